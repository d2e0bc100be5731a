package koala4j.models.unet;

import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;

import koala4j.io.json.Json;

/**
 * diffusers {@code UNet2DConditionModel}'s config.json, normalised per block: every "int or list" field is
 * expanded to one value per block (and transformer depths to one value per layer), with diffusers' defaults.
 * A field these checkpoints never use with a non-default value is rejected with the file and field named.
 */
public record UNetConfig(
        int inChannels, int outChannels, List<Integer> blockOutChannels, List<String> downBlockTypes,
        List<String> upBlockTypes, String midBlockType, List<Integer> layersPerBlock, int normNumGroups, float normEps,
        List<Integer> crossAttentionDim, List<Integer> numAttentionHeads, List<List<Integer>> downDepths,
        List<List<Integer>> upDepths, List<Integer> midDepth, boolean useLinearProjection, boolean flipSinToCos,
        float freqShift, int downsamplePadding, float midBlockScaleFactor, boolean textTimeEmbedding,
        int additionTimeEmbedDim, int projectionClassEmbeddingsInputDim, int timeCondProjDim, int convInKernel,
        int convOutKernel, int sampleSize, int timeEmbeddingDim) {

    static final List<String> DOWN_TYPES = List.of("DownBlock2D", "CrossAttnDownBlock2D");
    static final List<String> UP_TYPES = List.of("UpBlock2D", "CrossAttnUpBlock2D");

    public static UNetConfig from(Json j) {
        String file = j.file().toString();
        List<Integer> channels = j.intList("block_out_channels");
        int blocks = channels.size();
        List<String> down = j.stringList("down_block_types");
        List<String> up = j.stringList("up_block_types");
        if (down.size() != blocks || up.size() != blocks) {
            throw new IllegalArgumentException(file + ": down_block_types (" + down.size() + ") and up_block_types ("
                    + up.size() + ") must each have one entry per block_out_channels (" + blocks + ")");
        }
        for (String t : down) {
            if (!DOWN_TYPES.contains(t)) {
                throw new IllegalArgumentException(file + ": down_block_types has \"" + t + "\", expected one of " + DOWN_TYPES);
            }
        }
        for (String t : up) {
            if (!UP_TYPES.contains(t)) {
                throw new IllegalArgumentException(file + ": up_block_types has \"" + t + "\", expected one of " + UP_TYPES);
            }
        }
        String mid = j.has("mid_block_type") && !j.isNull("mid_block_type") ? j.string("mid_block_type") : null;
        if (mid != null && !mid.equals("UNetMidBlock2DCrossAttn") && !mid.equals("UNetMidBlock2D")) {
            throw new IllegalArgumentException(file + ": mid_block_type \"" + mid
                    + "\", expected UNetMidBlock2DCrossAttn, UNetMidBlock2D or null");
        }
        if (!j.has("mid_block_type")) {
            mid = "UNetMidBlock2DCrossAttn";
        }
        List<Integer> layers = perBlock(j, "layers_per_block", 2, blocks);
        List<Integer> cross = perBlock(j, "cross_attention_dim", 1280, blocks);
        // diffusers: num_attention_heads = num_attention_heads or attention_head_dim (the latter is a head count)
        String headsKey = j.has("num_attention_heads") && !j.isNull("num_attention_heads") ? "num_attention_heads"
                : "attention_head_dim";
        List<Integer> heads = perBlock(j, headsKey, 8, blocks);
        List<List<Integer>> downDepths = new ArrayList<>();
        JsonNode tl = j.has("transformer_layers_per_block") ? j.node().get("transformer_layers_per_block") : null;
        List<JsonNode> perBlockDepth = expandBlocks(file, "transformer_layers_per_block", tl, blocks);
        for (int i = 0; i < blocks; i++) {
            downDepths.add(perLayer(file, "transformer_layers_per_block[" + i + "]", perBlockDepth.get(i), layers.get(i)));
        }
        List<List<Integer>> upDepths = new ArrayList<>();
        JsonNode reverse = j.has("reverse_transformer_layers_per_block") && !j.isNull("reverse_transformer_layers_per_block")
                ? j.node().get("reverse_transformer_layers_per_block") : null;
        for (int i = 0; i < blocks; i++) {
            int upLayers = layers.get(blocks - 1 - i) + 1;
            boolean crossUp = up.get(i).equals("CrossAttnUpBlock2D");
            JsonNode spec = reverse != null ? reverse.get(i) : perBlockDepth.get(blocks - 1 - i);
            if (reverse != null && (!reverse.isArray() || reverse.size() != blocks)) {
                throw new IllegalArgumentException(file + ": reverse_transformer_layers_per_block must have " + blocks + " entries");
            }
            upDepths.add(crossUp ? perLayer(file, "up transformer depth of block " + i, spec, upLayers) : List.of());
        }
        List<Integer> midDepth = mid != null && mid.equals("UNetMidBlock2DCrossAttn")
                ? List.of(perBlockDepth.get(blocks - 1).isArray() ? perBlockDepth.get(blocks - 1).get(0).asInt()
                        : perBlockDepth.get(blocks - 1).asInt())
                : List.of();
        String addition = j.has("addition_embed_type") && !j.isNull("addition_embed_type") ? j.string("addition_embed_type") : null;
        if (addition != null && !addition.equals("text_time")) {
            throw new IllegalArgumentException(file + ": addition_embed_type \"" + addition + "\", expected text_time or null");
        }
        rejectUnlessDefault(j, "class_embed_type");
        rejectUnlessDefault(j, "encoder_hid_dim");
        rejectUnlessDefault(j, "time_embedding_act_fn");
        rejectUnlessDefault(j, "timestep_post_act");
        if (j.boolOr("dual_cross_attention", false) || j.boolOr("only_cross_attention", false)
                || j.boolOr("center_input_sample", false) || j.boolOr("resnet_skip_time_act", false)) {
            throw new IllegalArgumentException(file + ": dual_cross_attention / only_cross_attention / "
                    + "center_input_sample / resnet_skip_time_act = true are not supported");
        }
        String shift = j.stringOr("resnet_time_scale_shift", "default");
        if (!shift.equals("default")) {
            throw new IllegalArgumentException(file + ": resnet_time_scale_shift \"" + shift + "\", expected default");
        }
        String act = j.stringOr("act_fn", "silu");
        if (!act.equals("silu")) {
            throw new IllegalArgumentException(file + ": act_fn \"" + act + "\", expected silu");
        }
        String embType = j.stringOr("time_embedding_type", "positional");
        if (!embType.equals("positional")) {
            throw new IllegalArgumentException(file + ": time_embedding_type \"" + embType + "\", expected positional");
        }
        String attnType = j.stringOr("attention_type", "default");
        if (!attnType.equals("default")) {
            throw new IllegalArgumentException(file + ": attention_type \"" + attnType + "\", expected default");
        }
        return new UNetConfig(j.intOr("in_channels", 4), j.intOr("out_channels", 4), channels, down, up, mid, layers,
                j.intOr("norm_num_groups", 32), j.floatOr("norm_eps", 1e-5f), cross, heads, downDepths, upDepths, midDepth,
                j.boolOr("use_linear_projection", false), j.boolOr("flip_sin_to_cos", true), j.floatOr("freq_shift", 0f),
                j.intOr("downsample_padding", 1), j.floatOr("mid_block_scale_factor", 1f), addition != null,
                intOrNull(j, "addition_time_embed_dim", 256), intOrNull(j, "projection_class_embeddings_input_dim", 0),
                intOrNull(j, "time_cond_proj_dim", 0), j.intOr("conv_in_kernel", 3),
                j.intOr("conv_out_kernel", 3), intOrNull(j, "sample_size", 64), intOrNull(j, "time_embedding_dim", 0));
    }

    /** Fields diffusers writes as null when unused: null and absent both mean the default. */
    private static int intOrNull(Json j, String key, int dflt) {
        return j.has(key) && !j.isNull(key) ? j.intValue(key) : dflt;
    }

    private static void rejectUnlessDefault(Json j, String key) {
        if (j.has(key) && !j.isNull(key)) {
            throw new IllegalArgumentException(j.file() + ": " + key + " = " + j.node().get(key)
                    + " is not supported (expected null)");
        }
    }

    /** An int repeated per block, or a list with one entry per block. */
    private static List<Integer> perBlock(Json j, String key, int dflt, int blocks) {
        if (!j.has(key) || j.isNull(key)) {
            return java.util.Collections.nCopies(blocks, dflt);
        }
        List<Integer> values = j.intOrIntList(key, blocks);
        if (values.size() != blocks) {
            throw new IllegalArgumentException(j.file() + ": " + key + " has " + values.size() + " entries, expected "
                    + blocks + " (one per block)");
        }
        return values;
    }

    private static List<JsonNode> expandBlocks(String file, String key, JsonNode node, int blocks) {
        List<JsonNode> out = new ArrayList<>();
        if (node == null || node.isNull()) {
            for (int i = 0; i < blocks; i++) {
                out.add(com.fasterxml.jackson.databind.node.IntNode.valueOf(1));
            }
            return out;
        }
        if (node.isInt()) {
            for (int i = 0; i < blocks; i++) {
                out.add(node);
            }
            return out;
        }
        if (!node.isArray() || node.size() != blocks) {
            throw new IllegalArgumentException(file + ": " + key + " = " + node + ", expected an int or " + blocks + " entries");
        }
        node.forEach(out::add);
        return out;
    }

    private static List<Integer> perLayer(String file, String what, JsonNode node, int layers) {
        List<Integer> out = new ArrayList<>();
        if (node.isInt()) {
            for (int i = 0; i < layers; i++) {
                out.add(node.asInt());
            }
        } else if (node.isArray() && node.size() == layers) {
            node.forEach(n -> out.add(n.asInt()));
        } else {
            throw new IllegalArgumentException(file + ": " + what + " = " + node + ", expected an int or " + layers
                    + " per-layer depths");
        }
        for (int d : out) {
            if (d < 0) {
                throw new IllegalArgumentException(file + ": " + what + " has a negative depth " + d);
            }
        }
        return List.copyOf(out);
    }

    /** diffusers: {@code time_embedding_dim or block_out_channels[0] * 4}. */
    public int timeEmbedDim() {
        return timeEmbeddingDim > 0 ? timeEmbeddingDim : blockOutChannels.getFirst() * 4;
    }
}
