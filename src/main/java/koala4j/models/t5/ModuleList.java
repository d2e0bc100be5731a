package koala4j.models.t5;

import koala4j.nn.Module;

/**
 * torch.nn.ModuleList / an indexed nn.Sequential as the reference names its children: "block.0", "layer.2",
 * "positional_convol.2" (indices with no weights, such as a Rearrange, are simply not registered).
 */
final class ModuleList extends Module {

    <M extends Module> M add(int index, M module) {
        return child(Integer.toString(index), module);
    }
}
