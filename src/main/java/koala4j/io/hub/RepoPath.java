package koala4j.io.hub;

import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * Names that come from the hub (a sibling's {@code rfilename}, an ETag, a commit hash) become file names in the cache,
 * so each is checked before it touches the disk: a hostile or broken server must not be able to write outside the
 * repo's cache folder. huggingface_hub relies on the hub being trusted here; a mirror set through HF_ENDPOINT need not be.
 */
final class RepoPath {

    /** A git commit hash as the hub sends it in "sha" and X-Repo-Commit (huggingface_hub's REGEX_COMMIT_HASH). */
    static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");

    /** Hub ETags are a git blob sha1 or an LFS sha256; mirrors may send other opaque tokens, but never path syntax. */
    private static final Pattern ETAG = Pattern.compile("[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}");

    private RepoPath() {
    }

    /**
     * {@code name} if it is a plain relative path with '/' separators, else a HubException naming it and {@code where}
     * it came from. Rejects: empty, absolute, backslashes, '.', '..' or empty segments, control characters.
     */
    static String check(String name, String where) {
        String problem = null;
        if (name == null || name.isEmpty()) {
            problem = "it is empty";
        } else if (name.startsWith("/")) {
            problem = "it is absolute";
        } else if (name.indexOf('\\') >= 0) {
            problem = "it contains a backslash";
        } else if (name.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
            problem = "it contains a control character";
        } else {
            for (String segment : name.split("/", -1)) {
                if (segment.isEmpty() || segment.equals(".") || segment.equals("..")) {
                    problem = "it has a '" + segment + "' segment";
                    break;
                }
            }
        }
        if (problem != null) {
            throw new HubException("refusing file name '" + name + "' from " + where + ": " + problem
                    + "; expected a relative path inside the repo such as unet/config.json");
        }
        return name;
    }

    /** {@code folder/name}, after checking that it stays inside {@code folder} on this platform's path rules too. */
    static Path inside(Path folder, String name, String where) {
        check(name, where);
        Path base = folder.normalize();
        Path resolved = base.resolve(name).normalize();
        if (!resolved.startsWith(base) || resolved.equals(base)) {
            throw new HubException("refusing file name '" + name + "' from " + where + ": it resolves to " + resolved
                    + ", outside " + base);
        }
        return resolved;
    }

    /** A commit hash as sent by the server, or a HubException naming the value and {@code where}. */
    static String commit(String value, String where) {
        if (value == null || !COMMIT.matcher(value).matches()) {
            throw new HubException(where + " gave commit '" + value + "'; expected 40 lowercase hex digits");
        }
        return value;
    }

    /**
     * The blob name for an ETag header value: huggingface_hub's {@code _normalize_etag} drops a weak-validator
     * "W/" prefix and the quotes.
     */
    static String etag(String header, String where) {
        String e = header.strip();
        if (e.startsWith("W/")) {
            e = e.substring(2);
        }
        if (e.length() >= 2 && e.startsWith("\"") && e.endsWith("\"")) {
            e = e.substring(1, e.length() - 1);
        }
        if (!ETAG.matcher(e).matches()) {
            throw new HubException(where + " sent ETag '" + header + "', which cannot name a blob file; expected hex "
                    + "digits (a git sha1 or an LFS sha256)");
        }
        return e;
    }
}
