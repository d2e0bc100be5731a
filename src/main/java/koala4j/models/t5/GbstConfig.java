package koala4j.models.t5;

import java.util.ArrayList;
import java.util.List;

import koala4j.io.json.Json;

/**
 * The GBST fields of ETRI's {@code GBSWT5Config} (etri-crossmodal/gbswt5, configuration_gbst5.py): the candidate
 * subword blocks, the downsampling factor, score consensus attention and the optional BatchNorm.
 *
 * @param blockSizes candidate block sizes in bytes, in the config's order (the stacking order of the scores)
 */
public record GbstConfig(List<Integer> blockSizes, int downsampleFactor, boolean scoreConsensusAttn, boolean batchNorm) {

    /** GBSWT5Config's default {@code subword_blocks}: ((1, 0), (2, 0), (3, 0), (4, 0), (6, 0), (9, 0)). */
    public static final List<Integer> DEFAULT_BLOCKS = List.of(1, 2, 3, 4, 6, 9);

    public GbstConfig {
        blockSizes = List.copyOf(blockSizes);
        if (blockSizes.isEmpty() || blockSizes.stream().anyMatch(s -> s < 1)) {
            throw new IllegalArgumentException("GBST block sizes " + blockSizes + ": expected positive sizes");
        }
        if (downsampleFactor < 1) {
            throw new IllegalArgumentException("GBST downsample_factor " + downsampleFactor + ": expected at least 1");
        }
    }

    /**
     * {@code subword_blocks} (a list of [size, offset] pairs) or, when it is null, {@code max_subword_block_size}
     * (blocks 1..max). gbst.py asserts that exactly one of the two is given.
     */
    static GbstConfig from(Json j) {
        boolean hasBlocks = j.kind("subword_blocks") != Json.Kind.NULL;      // missing -> the config default
        boolean hasMax = j.has("max_subword_block_size") && !j.isNull("max_subword_block_size");
        if (hasBlocks == hasMax) {
            throw j.error("subword_blocks", hasBlocks ? "set together with max_subword_block_size" : "null",
                    "exactly one of subword_blocks and max_subword_block_size (gbst.py asserts this)");
        }
        List<Integer> sizes = new ArrayList<>();
        if (hasMax) {
            for (int s = 1; s <= j.intValue("max_subword_block_size"); s++) {
                sizes.add(s);
            }
        } else if (!j.has("subword_blocks")) {
            sizes.addAll(DEFAULT_BLOCKS);
        } else {
            for (List<Integer> block : j.intLists("subword_blocks")) {
                if (block.size() != 2 || block.get(0) < 1 || block.get(1) < 0 || block.get(1) >= block.get(0)) {
                    throw j.error("subword_blocks", block.toString(), "[size, offset] pairs with 0 <= offset < size");
                }
                if (block.get(1) != 0) {
                    // gbst.py pads the block mask with F.pad(mask, (0, 0, loff, roff)), which on a [B, S] mask pads
                    // the batch axis; with the attention mask that generate() always passes this raises there.
                    throw j.error("subword_blocks", block.toString(), "offset 0: blocks with an offset fail in the reference "
                            + "GBSWT.forward once an attention mask is given, so no published checkpoint uses them");
                }
                sizes.add(block.get(0));
            }
        }
        return new GbstConfig(sizes, j.intOr("downsample_factor", 1), j.boolOr("score_consensus_attn", true),
                j.boolOr("gbst_batchnorm", false));
    }

    public int maxBlockSize() {
        return blockSizes.stream().mapToInt(Integer::intValue).max().orElseThrow();
    }

    /** lcm of the block sizes: the sequence is padded to a multiple of it (GBSWT.block_pad_multiple). */
    public int blockPadMultiple() {
        long lcm = 1;
        for (int s : blockSizes) {
            lcm = lcm / gcd(lcm, s) * s;
        }
        return Math.toIntExact(lcm);
    }

    private static long gcd(long a, long b) {
        return b == 0 ? a : gcd(b, a % b);
    }
}
