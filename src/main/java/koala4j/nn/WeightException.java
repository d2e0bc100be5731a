package koala4j.nn;

/** A checkpoint that does not fit the model built from its config: names the source and the key. */
public final class WeightException extends RuntimeException {

    private final String source;
    private final String key;

    public WeightException(String source, String key, String problem) {
        super(source + ": " + key + ": " + problem);
        this.source = source;
        this.key = key;
    }

    public String source() {
        return source;
    }

    public String key() {
        return key;
    }
}
