package koala4j.io.json;

/**
 * The spelling an enum constant has in a JSON file, for {@link Json#enumOr}. diffusers and transformers spell
 * their choices in their own ways ({@code "UNetMidBlock2DCrossAttn"}, {@code "text_time"}, {@code "gelu_pytorch_tanh"}),
 * which rarely make legal or readable Java constant names.
 *
 * <p>A constant whose {@code jsonName()} returns {@code null} matches a JSON {@code null}: in diffusers configs
 * {@code null} is often a choice of its own ({@code "mid_block_type": null} means "no mid block"), not "use the default".
 */
public interface JsonName {
    /** The exact (case-sensitive) JSON string for this constant, or {@code null} to match a JSON {@code null}. */
    String jsonName();
}
