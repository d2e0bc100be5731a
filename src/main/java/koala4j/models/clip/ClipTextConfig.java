package koala4j.models.clip;

import java.util.List;

import koala4j.io.json.Json;
import koala4j.tensor.Activation;

/** transformers {@code CLIPTextConfig}, read from a text encoder's config.json with the reference defaults. */
public record ClipTextConfig(int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers,
                             int numAttentionHeads, int maxPositionEmbeddings, Activation hiddenAct,
                             float layerNormEps, int eosTokenId, int projectionDim, boolean withProjection) {

    public static ClipTextConfig from(Json j) {
        List<String> architectures = j.has("architectures") && !j.isNull("architectures")
                ? j.stringList("architectures") : List.of("CLIPTextModel");
        boolean projection = architectures.contains("CLIPTextModelWithProjection");
        if (!projection && !architectures.contains("CLIPTextModel")) {
            throw new IllegalArgumentException(j.file() + ": architectures " + architectures
                    + ", expected CLIPTextModel or CLIPTextModelWithProjection");
        }
        String act = j.stringOr("hidden_act", "quick_gelu");
        Activation activation = switch (act) {
            case "quick_gelu" -> Activation.QUICK_GELU;
            case "gelu" -> Activation.GELU;
            case "gelu_new", "gelu_pytorch_tanh" -> Activation.GELU_TANH;
            case "relu" -> Activation.RELU;
            default -> throw new IllegalArgumentException(j.file() + ": hidden_act = \"" + act
                    + "\", expected quick_gelu, gelu, gelu_new, gelu_pytorch_tanh or relu");
        };
        ClipTextConfig c = new ClipTextConfig(j.intOr("vocab_size", 49408), j.intOr("hidden_size", 512),
                j.intOr("intermediate_size", 2048), j.intOr("num_hidden_layers", 12), j.intOr("num_attention_heads", 8),
                j.intOr("max_position_embeddings", 77), activation, j.floatOr("layer_norm_eps", 1e-5f),
                j.intOr("eos_token_id", 49407), j.intOr("projection_dim", 512), projection);
        if (c.hiddenSize % c.numAttentionHeads != 0) {
            throw new IllegalArgumentException(j.file() + ": hidden_size " + c.hiddenSize
                    + " is not divisible by num_attention_heads " + c.numAttentionHeads);
        }
        return c;
    }

    public int headDim() {
        return hiddenSize / numAttentionHeads;
    }
}
