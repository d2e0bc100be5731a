package koala4j.io.hub;

import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.List;

/**
 * What the CLI's {@code --model} accepts, with diffusers' {@code from_pretrained} precedence
 * (pipeline_utils.py: an existing directory wins over a repo id of the same spelling).
 */
public final class ModelLocator {

    private ModelLocator() {
    }

    /**
     * An existing local folder is used as is; else a repo id (org/name) resolved via the HubClient at revision
     * "main"; else an error naming the argument and the cache folder looked in.
     */
    public static Path resolve(String model, HubClient client, List<String> allowPatterns) {
        Path cacheRoot = client.options().cache().root();
        if (model == null || model.isBlank()) {
            throw new HubException("--model is empty; expected a local model folder or a hub repo id (org/name),"
                    + " looked up in the cache " + cacheRoot);
        }
        Path local = null;
        try {
            local = Path.of(model);
        } catch (InvalidPathException e) {
            // not a path on this platform; it may still be a repo id
        }
        if (local != null && Files.isDirectory(local)) {
            return local;
        }
        if (local != null && Files.exists(local)) {
            throw new HubException("--model '" + model + "' is a file (" + local.toAbsolutePath() + "); expected a"
                    + " model folder (with model_index.json or config.json) or a hub repo id (org/name)");
        }
        if (HubCache.isRepoId(model)) {
            return client.snapshot(model, "main", allowPatterns);
        }
        throw new HubException("--model '" + model + "' is neither an existing folder (looked at "
                + (local == null ? model : local.toAbsolutePath()) + ") nor a hub repo id of the form org/name"
                + " (which would be looked up in the cache " + cacheRoot + ")");
    }
}
