package koala4j.nn;

/**
 * torch.nn.ModuleList (children "0", "1", ...) or a plain container with named children: whatever the reference
 * nests without weights of its own ("down_blocks", "resnets", "transformer_blocks", "upsamplers").
 */
public final class ModuleList extends Module {

    /** Registers {@code module} under its index and returns it. */
    public <M extends Module> M add(int index, M module) {
        return child(Integer.toString(index), module);
    }

    /** Registers {@code module} under {@code name} and returns it. */
    public <M extends Module> M add(String name, M module) {
        return child(name, module);
    }
}
