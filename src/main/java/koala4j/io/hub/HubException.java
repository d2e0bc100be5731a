package koala4j.io.hub;

/**
 * A model could not be resolved or fetched: the message names the repo, file or folder involved, what was found and
 * what to do (set HF_TOKEN, unset HF_HUB_OFFLINE, check HF_ENDPOINT). Plays the role of huggingface_hub's
 * {@code HfHubHTTPError}, {@code RepositoryNotFoundError}, {@code GatedRepoError}, {@code EntryNotFoundError} and
 * {@code LocalEntryNotFoundError} (utils/_http.py, errors.py) in one type, since callers only report it.
 */
public final class HubException extends RuntimeException {

    public HubException(String message) {
        super(message);
    }

    public HubException(String message, Throwable cause) {
        super(message, cause);
    }
}
