package koala4j.pipelines;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import koala4j.tensor.rng.TorchGenerator;

/**
 * transformers' vectorised {@code _beam_search} (generation/utils.py, 4.57; also beam sampling), kept step for step
 * so that ties, length penalty and early stopping resolve as there, for any decoder that extends a batch of rows by
 * one token per step through its KV cache: T5's decoder ({@link Seq2SeqGeneration}) and LLaMA
 * ({@link TextGeneration}). Per input, {@code beams} running beams and {@code beams} finished hypotheses; each step
 * takes the log-softmax of each row's logits, lets the processors change it, adds the beam's score, keeps the top
 * (1 + #eos, at least 2) x beams continuations, moves those that hit eos or max_length into the finished set with
 * score / generated_length^length_penalty, moves the caches with their beams and stops per early_stopping. Scores
 * are float32 as in the reference.
 */
final class BeamSearch {

    /** The reference's "very large negative" for finished or impossible beams. */
    private static final float NEG = -1.0e9f;

    private BeamSearch() {
    }

    /** A decoder over inputs x beams rows. */
    interface Decoder {
        /** The logits [rows * vocab] of each row's next token after {@code last} (each row's last token). */
        float[] step(long[] last);

        /** Row r of the cache becomes what row {@code rows[r]} held. */
        void reorder(long[] rows);
    }

    /** The logits processors (and warpers, when sampling) on one row's log-probabilities. */
    interface Processor {
        void process(float[] logProbs, long[] sequence, int length, int minTokensToKeep);
    }

    /**
     * @param maxLength sequence length (prompt included) at which every beam stops
     * @param fill      what a sequence holds past its end
     * @param doSample  beam sampling: the continuations are drawn (torch's multinomial stream from {@code seed})
     */
    record Settings(int beams, int maxLength, float lengthPenalty, TextGenerationConfig.EarlyStopping earlyStopping,
                    List<Integer> eosTokenIds, long fill, boolean doSample, long seed) {

        Settings {
            eosTokenIds = List.copyOf(eosTokenIds);
            if (beams < 1) {
                throw new IllegalArgumentException("num_beams " + beams + ": expected at least 1");
            }
        }

        boolean isEos(long token) {
            return eosTokenIds.contains((int) token);
        }
    }

    /**
     * Runs the search. {@code prompts} are the inputs' sequences so far (all of one length; the decoder has seen all
     * but their last tokens), each on {@code settings.beams()} rows of the decoder (input b's beams are rows
     * b * beams .. b * beams + beams - 1). Returns the best finished hypothesis of each input, prompt included, all
     * cropped to the longest one (shorter ones keep {@code settings.fill()}).
     */
    static long[][] run(Decoder decoder, long[][] prompts, int vocab, Settings cfg, Processor processor,
                        Progress progress, Cancel cancel) {
        return padded(runTop(decoder, prompts, vocab, cfg, processor, progress, cancel, 1), cfg.fill());
    }

    /** {@link #runTop}'s hypotheses as generate() returns them: a row each, input by input, padded by {@code fill}. */
    static long[][] padded(long[][][] top, long fill) {
        int longest = 0;
        for (long[][] hypotheses : top) {
            for (long[] h : hypotheses) {
                longest = Math.max(longest, h.length);
            }
        }
        List<long[]> out = new ArrayList<>();
        for (long[][] hypotheses : top) {
            for (long[] h : hypotheses) {
                long[] row = Arrays.copyOf(h, longest);
                Arrays.fill(row, h.length, longest, fill);
                out.add(row);
            }
        }
        return out.toArray(long[][]::new);
    }

    /**
     * The same search, returning the {@code returns} best finished hypotheses of each input, best first (generate()'s
     * num_return_sequences, at most num_beams), each prompt included and at its own length.
     */
    static long[][][] runTop(Decoder decoder, long[][] prompts, int vocab, Settings cfg, Processor processor,
                             Progress progress, Cancel cancel, int returns) {
        if (returns < 1 || returns > cfg.beams()) {
            throw new IllegalArgumentException("num_return_sequences " + returns + " with num_beams " + cfg.beams()
                    + ": expected 1 to num_beams");
        }
        int inputs = prompts.length;
        int beams = cfg.beams();
        int maxLength = cfg.maxLength();
        int prompt = prompts[0].length;
        int keep = Math.max(2, 1 + cfg.eosTokenIds().size()) * beams;
        // _get_logits_processor: beam warpers keep 1 + #eos tokens so that a non-eos one survives; 2 without eos
        int minTokensToKeep = cfg.eosTokenIds().isEmpty() ? 2 : cfg.eosTokenIds().size() + 1;
        long fill = cfg.fill();
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
                System.arraycopy(prompts[b], 0, running[b][k], 0, prompt);
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
                    last[b * beams + k] = length > 0 ? running[b][k][length - 1] : fill;
                }
            }
            float[] logits = decoder.step(last);                                           // [B*K, V]
            long[] reorder = new long[inputs * beams];
            boolean allHit = true;
            for (int b = 0; b < inputs; b++) {
                // b. log-probabilities, processed, plus the running beam scores, flattened over beams x vocab
                float[] accumulated = new float[beams * vocab];
                for (int k = 0; k < beams; k++) {
                    int r = b * beams + k;
                    float[] logProbs = LogitsProcessing.logSoftmax(Arrays.copyOfRange(logits, r * vocab, (r + 1) * vocab));
                    processor.process(logProbs, running[b][k], length, minTokensToKeep);
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
            decoder.reorder(reorder);
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
        long[][][] out = new long[inputs][returns][];
        for (int b = 0; b < inputs; b++) {
            for (int k = 0; k < returns; k++) {
                int generated = 0;
                for (int index : finishedBeamIndices[b][k]) {
                    generated += index != -1 ? 1 : 0;
                }
                out[b][k] = Arrays.copyOf(finished[b][k], prompt + generated);
            }
        }
        return out;
    }

    /** {@code _check_early_stop_heuristic}: can the best running beam still beat the worst finished one? */
    private static boolean improvable(float bestRunning, float[] finishedScores, boolean[] isSentFinished, int length,
                                      int maxLength, int prompt, Settings cfg) {
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
