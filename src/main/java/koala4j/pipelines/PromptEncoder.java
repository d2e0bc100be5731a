package koala4j.pipelines;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import koala4j.models.clip.ClipTextModel;
import koala4j.tensor.DType;
import koala4j.tensor.Ops;
import koala4j.tensor.Tensor;
import koala4j.tokenizers.ClipTokenizer;

/**
 * diffusers' {@code encode_prompt}: SD 1.x/2.x take the text encoder's last hidden state; SDXL concatenates both
 * encoders' penultimate hidden states and takes text_encoder_2's projected pooled output. Prompts are padded and
 * truncated to the tokenizer's model_max_length; no attention mask is passed, as the pipelines do.
 */
final class PromptEncoder {

    /** Prompt embeddings [B, 77, C] and (SDXL) pooled embeddings [B, P], repeated per image. */
    record Conditioning(Tensor context, Tensor pooled) {
        Conditioning zerosLike() {
            Ops ops = context.ops();
            return new Conditioning(ops.full(0f, DType.F32, context.shape()),
                    pooled == null ? null : ops.full(0f, DType.F32, pooled.shape()));
        }
    }

    private final boolean xl;
    private final ClipTokenizer tokenizer;
    private final ClipTextModel textEncoder;
    private final ClipTokenizer tokenizer2;
    private final ClipTextModel textEncoder2;
    private final Ops ops;

    /** The first encoder may be absent in an SDXL folder (refiner-style); the second is SDXL's only. */
    PromptEncoder(boolean xl, ClipTokenizer tokenizer, ClipTextModel textEncoder, ClipTokenizer tokenizer2,
                  ClipTextModel textEncoder2, Ops ops) {
        this.xl = xl;
        this.tokenizer = tokenizer;
        this.textEncoder = textEncoder;
        this.tokenizer2 = tokenizer2;
        this.textEncoder2 = textEncoder2;
        this.ops = ops;
    }

    boolean hasPooledProjection() {
        return textEncoder2 != null && textEncoder2.config().withProjection();
    }

    int pooledProjectionDim() {
        return textEncoder2.config().projectionDim();
    }

    Conditioning encode(List<String> prompts, int perPrompt) {
        List<Tensor> contexts = new ArrayList<>();
        List<Tensor> pooled = new ArrayList<>();
        for (String prompt : prompts) {
            Tensor context;
            Tensor pool = null;
            if (xl) {
                List<Tensor> parts = new ArrayList<>();
                if (textEncoder != null) {
                    parts.add(textEncoder.forward(ids(tokenizer, textEncoder, prompt)).penultimate());
                }
                ClipTextModel.Output second = textEncoder2.forward(ids(tokenizer2, textEncoder2, prompt));
                parts.add(second.penultimate());
                pool = second.textEmbeds();
                context = Tensor.concat(parts, -1);                                      // [1, 77, C1 + C2]
            } else {
                context = textEncoder.forward(ids(tokenizer, textEncoder, prompt)).lastHiddenState();   // [1, 77, C]
            }
            for (int i = 0; i < perPrompt; i++) {
                contexts.add(context);
                if (pool != null) {
                    pooled.add(pool);
                }
            }
        }
        return new Conditioning(Tensor.concat(contexts, 0), pooled.isEmpty() ? null : Tensor.concat(pooled, 0));
    }

    /** Padded and truncated to model_max_length, never beyond the encoder's positions (a config without it). */
    private Tensor ids(ClipTokenizer tok, ClipTextModel encoder, String prompt) {
        int length = Math.min(tok.maxLength(), encoder.config().maxPositionEmbeddings());
        int[] ids = tok.encode(prompt, length, true, true).ids();
        long[] longs = Arrays.stream(ids).asLongStream().toArray();
        return ops.fromArray(longs, 1, longs.length);
    }
}
