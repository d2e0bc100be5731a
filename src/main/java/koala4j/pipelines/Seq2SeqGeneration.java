package koala4j.pipelines;

import java.util.Arrays;

import koala4j.models.t5.DecoderState;
import koala4j.models.t5.T5ForConditionalGeneration;
import koala4j.models.t5.T5ForConditionalGeneration.EncoderOutput;
import koala4j.tensor.rng.TorchGenerator;

/**
 * transformers' {@code GenerationMixin.generate} for an encoder-decoder (generation/utils.py, 4.57): the encoder runs
 * once, the decoder starts from {@code decoder_start_token_id} and extends every row one token per step through its
 * KV cache. {@link #sample} is {@code _sample} (greedy or multinomial sampling); {@link #beamSearch} is the
 * vectorised {@code _beam_search} (also beam sampling), kept step for step so that ties, length penalty and early
 * stopping resolve as there. Scores are float32 as in the reference.
 */
final class Seq2SeqGeneration {

    /** The reference's "very large negative" for finished or impossible beams. */
    private static final float NEG = -1.0e9f;

    private Seq2SeqGeneration() {
    }

    /**
     * {@code _sample}: greedy (argmax of the processed scores) or sampling; rows that produced eos are filled with
     * pad afterwards. Returns [B][L] with L = the length when every row finished or max_length was reached.
     */
    static long[][] sample(T5ForConditionalGeneration model, EncoderOutput encoded, TextGenerationConfig cfg,
                           Progress progress, Cancel cancel) {
        int rows = encoded.lastHiddenState().size(0);
        int vocab = model.config().vocabSize();
        DecoderState state = model.startDecoding(encoded, 1, cfg.maxLength() - 1);
        TorchGenerator rng = new TorchGenerator(cfg.seed());
        long[][] sequences = new long[rows][cfg.maxLength()];
        boolean[] unfinished = new boolean[rows];
        Arrays.fill(unfinished, true);
        long[] last = new long[rows];
        for (int r = 0; r < rows; r++) {
            sequences[r][0] = cfg.decoderStartTokenId();
            last[r] = cfg.decoderStartTokenId();
        }
        boolean hasEos = !cfg.eosTokenIds().isEmpty();
        int length = 1;
        while (true) {
            cancel.check();
            float[] logits = model.decodeStep(state, last).toFloatArray();                 // [B, V]
            for (int r = 0; r < rows; r++) {
                float[] row = Arrays.copyOfRange(logits, r * vocab, (r + 1) * vocab);
                process(row, sequences[r], length, cfg, 1);
                int token = cfg.doSample() ? LogitsProcessing.multinomial(LogitsProcessing.softmax(row), 1, rng)[0]
                        : LogitsProcessing.argmax(row);
                long next = hasEos && !unfinished[r] ? cfg.padTokenId() : token;
                sequences[r][length] = next;
                last[r] = next;
                if (hasEos && cfg.isEos(next)) {
                    unfinished[r] = false;
                }
            }
            length++;
            progress.step(length - 1, cfg.maxLength() - 1);
            boolean any = false;
            for (boolean u : unfinished) {
                any |= u;
            }
            if (!any || length >= cfg.maxLength()) {
                break;
            }
        }
        long[][] out = new long[rows][];
        for (int r = 0; r < rows; r++) {
            out[r] = Arrays.copyOf(sequences[r], length);
        }
        return out;
    }

    /** The logits processors generate() builds for these settings, in its order (warpers last, when sampling). */
    private static void process(float[] row, long[] sequence, int length, TextGenerationConfig cfg, int minTokensToKeep) {
        LogitsProcessing.noRepeatNgram(sequence, length, cfg.noRepeatNgramSize(), row);
        if (cfg.doSample()) {
            if (cfg.temperature() != 1f) {
                LogitsProcessing.temperature(row, cfg.temperature());
            }
            if (cfg.topK() != 0) {
                LogitsProcessing.topK(row, cfg.topK(), minTokensToKeep);
            }
            if (cfg.topP() < 1f) {
                LogitsProcessing.topP(row, cfg.topP(), minTokensToKeep);
            }
        }
    }

    /**
     * {@code _beam_search}: per input, {@code numBeams} running beams and {@code numBeams} finished hypotheses; each
     * step keeps the top (1 + #eos, at least 2) x beams continuations, moves those that hit eos or max_length into
     * the finished set with score / generated_length^length_penalty, and stops per early_stopping. Returns the best
     * finished hypothesis of each input, all cropped to the longest one (shorter ones keep the fill value, which is
     * pad unless pad is 0 or unset, then eos, as the reference's {@code pad_token_id or eos_token_id[0]}).
     */
    static long[][] beamSearch(T5ForConditionalGeneration model, EncoderOutput encoded, TextGenerationConfig cfg,
                               Progress progress, Cancel cancel) {
        int inputs = encoded.lastHiddenState().size(0);
        int beams = cfg.numBeams();
        int vocab = model.config().vocabSize();
        int maxLength = cfg.maxLength();
        int prompt = 1;                                                   // the decoder start token
        int keep = Math.max(2, 1 + cfg.eosTokenIds().size()) * beams;
        long fill = cfg.eosTokenIds().isEmpty() ? -1
                : cfg.padTokenId() > 0 ? cfg.padTokenId() : cfg.eosTokenIds().getFirst();
        DecoderState state = model.startDecoding(encoded, beams, maxLength - 1);
        TorchGenerator rng = new TorchGenerator(cfg.seed());

        long[][][] running = new long[inputs][beams][maxLength];
        float[][] runningScores = new float[inputs][beams];
        int[][][] runningBeamIndices = new int[inputs][beams][maxLength - prompt];
        long[][][] finished = new long[inputs][beams][maxLength];
        float[][] finishedScores = new float[inputs][beams];
        int[][][] finishedBeamIndices = new int[inputs][beams][maxLength - prompt];
        boolean[][] isSentFinished = new boolean[inputs][beams];
        boolean[] heuristicUnsatisfied = new boolean[inputs];
        for (int b = 0; b < inputs; b++) {
            heuristicUnsatisfied[b] = true;
            for (int k = 0; k < beams; k++) {
                Arrays.fill(running[b][k], fill);
                running[b][k][0] = cfg.decoderStartTokenId();
                finished[b][k] = running[b][k].clone();
                runningScores[b][k] = k == 0 ? 0f : NEG;                  // only beam 0 may start
                finishedScores[b][k] = NEG;
                Arrays.fill(runningBeamIndices[b][k], -1);
                Arrays.fill(finishedBeamIndices[b][k], -1);
            }
        }
        int length = prompt;
        while (true) {
            cancel.check();
            long[] last = new long[inputs * beams];
            for (int b = 0; b < inputs; b++) {
                for (int k = 0; k < beams; k++) {
                    last[b * beams + k] = running[b][k][length - 1];
                }
            }
            float[] logits = model.decodeStep(state, last).toFloatArray();                 // [B*K, V]
            long[] reorder = new long[inputs * beams];
            boolean allHit = true;
            for (int b = 0; b < inputs; b++) {
                // b. log-probabilities, processed, plus the running beam scores, flattened over beams x vocab
                float[] accumulated = new float[beams * vocab];
                for (int k = 0; k < beams; k++) {
                    int r = b * beams + k;
                    float[] logProbs = LogitsProcessing.logSoftmax(Arrays.copyOfRange(logits, r * vocab, (r + 1) * vocab));
                    process(logProbs, running[b][k], length, cfg, cfg.eosTokenIds().size() + 1);
                    for (int v = 0; v < vocab; v++) {
                        accumulated[k * vocab + v] = logProbs[v] + runningScores[b][k];
                    }
                }
                // c. top-K continuations (sampled without replacement when do_sample)
                int[] top = cfg.doSample() ? LogitsProcessing.multinomial(LogitsProcessing.softmax(accumulated), keep, rng)
                        : LogitsProcessing.topKIndices(accumulated, keep);
                float[] topScores = new float[keep];
                long[][] topSequences = new long[keep][];
                int[][] topBeamIndices = new int[keep][];
                int[] topSource = new int[keep];
                boolean[] hits = new boolean[keep];
                for (int j = 0; j < keep; j++) {
                    int beam = top[j] / vocab;
                    int token = top[j] % vocab;
                    topScores[j] = accumulated[top[j]];
                    topSource[j] = beam;
                    topSequences[j] = running[b][beam].clone();
                    topSequences[j][length] = token;
                    topBeamIndices[j] = runningBeamIndices[b][beam].clone();
                    topBeamIndices[j][length - prompt] = b * beams + beam;
                    // d. stopping criteria: max_length, eos
                    hits[j] = length + 1 >= maxLength || cfg.isEos(token);
                    allHit &= hits[j];
                }
                // e. the best non-finished continuations run on
                float[] runningCandidates = new float[keep];
                for (int j = 0; j < keep; j++) {
                    runningCandidates[j] = topScores[j] + (hits[j] ? NEG : -0f);
                }
                int[] next = LogitsProcessing.topKIndices(runningCandidates, beams);
                for (int k = 0; k < beams; k++) {
                    int j = next[k];
                    running[b][k] = topSequences[j];
                    runningScores[b][k] = runningCandidates[j];
                    runningBeamIndices[b][k] = topBeamIndices[j];
                    reorder[b * beams + k] = (long) b * beams + topSource[j];
                }
                // f. finished hypotheses: only the first num_beams continuations may finish
                boolean full = true;
                for (boolean f : isSentFinished[b]) {
                    full &= f;
                }
                float penalty = (float) Math.pow(length + 1 - prompt, cfg.lengthPenalty());
                float[] merged = new float[beams + keep];
                System.arraycopy(finishedScores[b], 0, merged, 0, beams);
                boolean[] justFinished = new boolean[keep];
                for (int j = 0; j < keep; j++) {
                    justFinished[j] = hits[j] && j < beams;
                    float s = topScores[j] / penalty;
                    s += full && cfg.earlyStopping() == TextGenerationConfig.EarlyStopping.TRUE ? NEG : -0f;
                    s += heuristicUnsatisfied[b] ? -0f : NEG;
                    s += justFinished[j] ? -0f : NEG;
                    merged[beams + j] = s;
                }
                int[] best = LogitsProcessing.topKIndices(merged, beams);
                long[][] sequences = new long[beams][];
                float[] scores = new float[beams];
                int[][] beamIndices = new int[beams][];
                boolean[] done = new boolean[beams];
                for (int k = 0; k < beams; k++) {
                    int m = best[k];
                    boolean old = m < beams;
                    sequences[k] = old ? finished[b][m] : topSequences[m - beams];
                    scores[k] = merged[m];
                    beamIndices[k] = old ? finishedBeamIndices[b][m] : topBeamIndices[m - beams];
                    done[k] = old ? isSentFinished[b][m] : justFinished[m - beams];
                }
                finished[b] = sequences;
                finishedScores[b] = scores;
                finishedBeamIndices[b] = beamIndices;
                isSentFinished[b] = done;
            }
            // g. move the caches with their beams, then the stopping conditions
            state.reorder(reorder);
            length++;
            progress.step(length - prompt, maxLength - prompt);
            boolean improvementPossible = false;
            boolean allFinished = true;
            for (int b = 0; b < inputs; b++) {
                heuristicUnsatisfied[b] &= improvable(runningScores[b][0], finishedScores[b], isSentFinished[b], length,
                        maxLength, prompt, cfg);
                improvementPossible |= heuristicUnsatisfied[b];
                for (boolean f : isSentFinished[b]) {
                    allFinished &= f;
                }
            }
            boolean openBeam = !(allFinished && cfg.earlyStopping() == TextGenerationConfig.EarlyStopping.TRUE);
            if (!(improvementPossible && openBeam && !allHit)) {
                break;
            }
        }
        int generated = 0;
        for (int b = 0; b < inputs; b++) {
            int n = 0;
            for (int index : finishedBeamIndices[b][0]) {
                n += index != -1 ? 1 : 0;
            }
            generated = Math.max(generated, n);
        }
        long[][] out = new long[inputs][];
        for (int b = 0; b < inputs; b++) {
            out[b] = Arrays.copyOf(finished[b][0], prompt + generated);
        }
        return out;
    }

    /** {@code _check_early_stop_heuristic}: can the best running beam still beat the worst finished one? */
    private static boolean improvable(float bestRunning, float[] finishedScores, boolean[] isSentFinished, int length,
                                      int maxLength, int prompt, TextGenerationConfig cfg) {
        int hypotheticalLength = cfg.earlyStopping() == TextGenerationConfig.EarlyStopping.NEVER && cfg.lengthPenalty() > 0
                ? maxLength - prompt : length - prompt;
        float best = bestRunning / (float) Math.pow(hypotheticalLength, cfg.lengthPenalty());
        float worstFinished = Float.POSITIVE_INFINITY;
        for (float s : finishedScores) {
            worstFinished = Math.min(worstFinished, s);
        }
        for (boolean f : isSentFinished) {
            if (best > (f ? worstFinished : NEG)) {
                return true;
            }
        }
        return false;
    }
}
