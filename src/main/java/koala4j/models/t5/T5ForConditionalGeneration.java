package koala4j.models.t5;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;

import koala4j.nn.Embedding;
import koala4j.nn.Linear;
import koala4j.nn.Module;
import koala4j.nn.WeightSource;
import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;

/**
 * transformers {@code T5ForConditionalGeneration} (models/t5/modeling_t5.py) for T5 v1.1 / ByT5 / KEByT5
 * checkpoints, and ETRI's {@code GBSWT5ForConditionalGeneration} (etri-crossmodal/gbswt5, modeling_gbst5.py) when
 * the config carries GBST fields: the same encoder-decoder, with {@link Gbswt} downsampling the byte sequence before
 * the encoder blocks (the decoder keeps plain byte embeddings). Keys: {@code shared.weight}, {@code encoder.*},
 * {@code decoder.*}, {@code lm_head.weight} (absent when the embeddings are tied).
 *
 * <p>Whole-sequence passes ({@link #encode}, {@link #decode}) serve tests and embeddings; generation runs
 * {@link #startDecoding} once and {@link #decodeStep} per token against a {@link DecoderState}. Immutable after
 * loading; one model may serve many requests at once, each with its own DecoderState.
 */
public final class T5ForConditionalGeneration extends Module {

    /**
     * The encoder's result: {@code lastHiddenState} [B, N, C], its mask [B, N] (F32 1/0; for GBST the downsampled
     * one, which the decoder's cross-attention uses), and the reference's {@code encoder_hidden_states}.
     */
    public record EncoderOutput(Tensor lastHiddenState, Tensor attentionMask, List<Tensor> hiddenStates) {
    }

    /** {@code logits} [B, T, V] and {@code decoder_hidden_states} (the last is after final_layer_norm). */
    public record DecoderOutput(Tensor logits, List<Tensor> hiddenStates) {
    }

    /** Keys the reference ties to {@code shared.weight} or ignores when loading (T5's _keys_to_ignore_on_load_unexpected). */
    private static final Set<String> TIED_OR_IGNORED = Set.of("encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
            "encoder.embed_tokens.embeds.weight", "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight");

    private final T5Config config;
    private final Embedding shared;
    private final T5Stack encoder;
    private final T5Stack decoder;
    private final Linear lmHead;

    public T5ForConditionalGeneration(T5Config config) {
        this.config = config;
        shared = child("shared", new Embedding(config.vocabSize(), config.dModel()));
        encoder = child("encoder", new T5Stack(config, false, shared));
        decoder = child("decoder", new T5Stack(config, true, shared));
        lmHead = config.tieWordEmbeddings() ? null : child("lm_head", new Linear(config.dModel(), config.vocabSize(), false));
    }

    public T5Config config() {
        return config;
    }

    /** The GBST block in front of the encoder; null for a plain T5. */
    Gbswt encoderEmbedding() {
        return encoder.embedTokens;
    }

    /**
     * Loads the weights with the reference's tying: {@code shared.weight} may be stored under one of its tied names
     * (encoder/decoder {@code embed_tokens}), those names are not reported as unexpected, and with
     * {@code tie_word_embeddings} a stored {@code lm_head.weight} is ignored (the head is {@code shared}).
     */
    public LoadReport loadWeights(WeightSource source) {
        WeightSource aliased = new WeightSource() {
            @Override
            public Optional<Tensor> tensor(String key) {
                Optional<Tensor> t = source.tensor(key);
                if (t.isEmpty() && key.equals("shared.weight")) {
                    for (String alias : List.of("encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
                            "encoder.embed_tokens.embeds.weight")) {
                        t = source.tensor(alias);
                        if (t.isPresent()) {
                            break;
                        }
                    }
                }
                return t;
            }

            @Override
            public Set<String> keys() {
                return source.keys();
            }

            @Override
            public String describe() {
                return source.describe();
            }
        };
        LoadReport report = load(aliased);
        List<String> unexpected = new ArrayList<>();
        for (String key : report.unexpectedKeys()) {
            boolean tiedHead = lmHead == null && key.equals("lm_head.weight");
            boolean unusedCounter = key.endsWith(".bn.num_batches_tracked");
            if (!TIED_OR_IGNORED.contains(key) && !tiedHead && !unusedCounter) {
                unexpected.add(key);
            }
        }
        return new LoadReport(List.copyOf(unexpected));
    }

    /**
     * The encoder ({@code T5Stack} / {@code GBSWT5Stack}) over ids [B, S] with an attention mask [B, S] (1 keep,
     * 0 padding) or null (all kept; for GBST the reference's no-mask branch).
     */
    public EncoderOutput encode(Tensor inputIds, Tensor attentionMask) {
        Ops ops = inputIds.ops();
        if (inputIds.rank() != 2) {
            throw new IllegalArgumentException("input ids of shape " + java.util.Arrays.toString(inputIds.shape())
                    + ", expected [B, S]");
        }
        Tensor embeds;
        Tensor mask;
        if (encoder.embedTokens != null) {
            Gbswt.Output g = encoder.embedTokens.forward(inputIds, attentionMask);
            embeds = g.embeds();                                                      // [B, N', C]
            mask = g.mask();                                                          // [B, N']
        } else {
            embeds = shared.forward(inputIds.to(DType.I64));                          // [B, S, C]
            mask = attentionMask != null ? attentionMask.to(DType.F32)
                    : ops.full(1f, DType.F32, inputIds.size(0), inputIds.size(1));
        }
        int n = embeds.size(1);
        Tensor bias = encoder.positionBias(ops, 0, n, n);                             // [1, nH, N, N]
        Tensor padding = paddingBias(mask);                                           // [B, 1, 1, N] or null
        if (padding != null) {
            bias = bias.add(padding);                                                 // [B, nH, N, N]
        }
        List<Tensor> hidden = encoder.forward(embeds, bias, false, null, null);
        return new EncoderOutput(hidden.getLast(), mask, List.copyOf(hidden));
    }

    /** The decoder over a whole prefix [B, T] (teacher forcing), causal, with the reference's logits. */
    public DecoderOutput decode(Tensor decoderInputIds, EncoderOutput encoded) {
        Ops ops = decoderInputIds.ops();
        int t = decoderInputIds.size(1);
        Tensor embeds = shared.forward(decoderInputIds.to(DType.I64));               // [B, T, C]
        Tensor bias = decoder.positionBias(ops, 0, t, t);                             // [1, nH, T, T]
        List<Tensor> hidden = decoder.forward(embeds, bias, true, encoded.lastHiddenState(),
                paddingBias(encoded.attentionMask()));
        return new DecoderOutput(lmHead(hidden.getLast()), List.copyOf(hidden));
    }

    /**
     * Starts incremental decoding: each encoder row is repeated {@code beams} times (generate()'s
     * {@code _expand_inputs_for_generation}), the cross-attention keys/values are projected once per layer, and the
     * self-attention caches are allocated for {@code capacity} decoder positions.
     */
    public DecoderState startDecoding(EncoderOutput encoded, int beams, int capacity) {
        if (beams < 1 || capacity < 1) {
            throw new IllegalArgumentException("beams " + beams + " and capacity " + capacity + " must be positive");
        }
        Tensor states = encoded.lastHiddenState();                                    // [B, Ns, C]
        Tensor mask = encoded.attentionMask();                                        // [B, Ns]
        int inputs = states.size(0);
        if (beams > 1) {
            long[] rows = new long[inputs * beams];
            for (int i = 0; i < rows.length; i++) {
                rows[i] = i / beams;
            }
            Tensor index = states.ops().fromArray(rows, rows.length);
            states = states.indexSelect(0, index);                                    // [B*K, Ns, C]
            mask = mask.indexSelect(0, index);                                        // [B*K, Ns]
        }
        int batch = inputs * beams;
        Ops ops = states.ops();
        DecoderState.Layer[] layers = new DecoderState.Layer[decoder.blocks.size()];
        for (int i = 0; i < layers.length; i++) {
            T5Attention cross = decoder.blocks.get(i).crossAttention.attention;
            layers[i] = new DecoderState.Layer(
                    ops.empty(DType.F32, batch, config.numHeads(), capacity, config.dKv()),
                    ops.empty(DType.F32, batch, config.numHeads(), capacity, config.dKv()),
                    cross.keys(states), cross.values(states));                        // [B*K, nH, Ns, D]
        }
        return new DecoderState(layers, paddingBias(mask), batch, beams, capacity);
    }

    /** One decoding step: the next token of every row [B] in, next-token logits [B, V] out. */
    public Tensor decodeStep(DecoderState state, long[] tokenIds) {
        int position = state.length();
        if (position >= state.capacity()) {
            throw new IllegalStateException("decoder cache full: " + state.capacity() + " positions");
        }
        if (tokenIds.length != state.batch()) {
            throw new IllegalArgumentException(tokenIds.length + " token ids for " + state.batch() + " rows");
        }
        Ops ops = state.layers[0].crossK.ops();
        Tensor h = shared.forward(ops.fromArray(tokenIds, tokenIds.length, 1));      // [B, 1, C]
        Tensor bias = decoder.positionBias(ops, position, 1, position + 1);           // [1, nH, 1, t+1]
        for (int i = 0; i < decoder.blocks.size(); i++) {
            h = decoder.blocks.get(i).step(h, state.layers[i], position, bias, state.crossBias);  // [B, 1, C]
        }
        state.advance();
        Tensor logits = lmHead(decoder.finalLayerNorm.forward(h));                   // [B, 1, V]
        return logits.reshape(tokenIds.length, config.vocabSize());                   // [B, V]
    }

    /**
     * {@code lm_head}, or {@code shared} when tied; with {@code scale_decoder_outputs} (in transformers 4: with tied
     * embeddings) T5 rescales by d_model^-0.5 first (Mesh TensorFlow's convention).
     */
    private Tensor lmHead(Tensor h) {
        Tensor scaled = config.scaleDecoderOutputs() ? h.mul((float) Math.pow(config.dModel(), -0.5)) : h;
        return lmHead != null ? lmHead.forward(scaled) : scaled.linear(shared.weight().get(), null);
    }

    /** (1 - mask) as an additive bias [B, 1, 1, N] (-inf on padding), or null when nothing is padded. */
    private static Tensor paddingBias(Tensor mask) {
        if (mask.reshape(-1).min(0, false).item() > 0f) {
            return null;
        }
        return mask.maskToBias().unsqueeze(1).unsqueeze(1);
    }
}
