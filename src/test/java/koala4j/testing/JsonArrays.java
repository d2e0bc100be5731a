package koala4j.testing;

import com.fasterxml.jackson.databind.JsonNode;

/** Golden JSON arrays as Java arrays. */
public final class JsonArrays {

    private JsonArrays() {
    }

    /** A JSON array of integers (token ids, shapes) as an int[]. */
    public static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).intValue();
        }
        return out;
    }

    /** A JSON array of integers (ids, positions, seeds) as a long[]. */
    public static long[] longs(JsonNode array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asLong();
        }
        return out;
    }

    /** A JSON array of numbers as float32. */
    public static float[] floats(JsonNode array) {
        float[] out = new float[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) array.get(i).asDouble();
        }
        return out;
    }
}
