package koala4j.pipelines;

import java.util.Arrays;

import koala4j.models.t5.DecoderState;
import koala4j.models.t5.T5ForConditionalGeneration;
import koala4j.models.t5.T5ForConditionalGeneration.EncoderOutput;
import koala4j.tensor.rng.TorchGenerator;

/**
 * transformers' {@code GenerationMixin.generate} for an encoder-decoder (generation/utils.py, 4.57): the encoder runs
 * once, the decoder starts from {@code decoder_start_token_id} and extends every row one token per step through its
 * KV cache. {@link #sample} is {@code _sample} (greedy or multinomial sampling); {@link #beamSearch} is
 * {@link BeamSearch} (also beam sampling). Scores are float32 as in the reference.
 */
final class Seq2SeqGeneration {

    private Seq2SeqGeneration() {
    }

    /**
     * {@code _sample}: greedy (argmax of the processed scores) or sampling; rows that produced eos are filled with
     * pad afterwards. Returns [B][L] with L = the length when every row finished or max_length was reached. Each
     * row's new tokens up to its eos go to {@code tokens} as they are chosen.
     */
    static long[][] sample(T5ForConditionalGeneration model, EncoderOutput encoded, TextGenerationConfig cfg,
                           Progress progress, Cancel cancel, TokenSink tokens) {
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
                if (unfinished[r]) {
                    tokens.token(r, next);
                }
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

    /** Receives each row's tokens as {@link #sample} chooses them. */
    @FunctionalInterface
    interface TokenSink {
        TokenSink NONE = (row, token) -> { };

        void token(int row, long token);
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
     * {@code _beam_search} for the decoder, from its start token: see {@link BeamSearch}. Returns the
     * num_return_sequences best finished hypotheses of each input (input by input, best first), all cropped to the
     * longest one (shorter ones keep the fill value, which is pad unless pad is 0 or unset, then eos, as the
     * reference's {@code pad_token_id or eos_token_id[0]}).
     */
    static long[][] beamSearch(T5ForConditionalGeneration model, EncoderOutput encoded, TextGenerationConfig cfg,
                               Progress progress, Cancel cancel) {
        int inputs = encoded.lastHiddenState().size(0);
        long fill = cfg.eosTokenIds().isEmpty() ? -1
                : cfg.padTokenId() > 0 ? cfg.padTokenId() : cfg.eosTokenIds().getFirst();
        DecoderState state = model.startDecoding(encoded, cfg.numBeams(), cfg.maxLength() - 1);
        long[][] prompts = new long[inputs][];
        for (int b = 0; b < inputs; b++) {
            prompts[b] = new long[] {cfg.decoderStartTokenId()};
        }
        BeamSearch.Decoder decoder = new BeamSearch.Decoder() {
            @Override
            public float[] step(long[] last) {
                return model.decodeStep(state, last).toFloatArray();
            }

            @Override
            public void reorder(long[] rows) {
                state.reorder(rows);
            }
        };
        var settings = new BeamSearch.Settings(cfg.numBeams(), cfg.maxLength(), cfg.lengthPenalty(),
                cfg.earlyStopping(), cfg.eosTokenIds(), fill, cfg.doSample(), cfg.seed());
        long[][][] top = BeamSearch.runTop(decoder, prompts, model.config().vocabSize(), settings,
                (scores, sequence, length, keep) -> process(scores, sequence, length, cfg, keep), progress, cancel,
                cfg.numReturnSequences());
        return BeamSearch.padded(top, fill);
    }
}
