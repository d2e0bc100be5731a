package koala4j.io.safetensors;

import static koala4j.io.safetensors.Images.image;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One test per rule of the header check: each violation is one SafetensorsException with file, tensor, found, expected. */
class SafetensorsValidationTest {
    private static final String FILE = "mem.safetensors";

    /** A header with one tensor "w" whose fields are given as raw JSON. */
    private static String entry(String dtype, String shape, String offsets) {
        return "{\"w\":{\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}}";
    }

    private static SafetensorsException fails(byte[] image) {
        return assertThrows(SafetensorsException.class, () -> Images.parse(image));
    }

    private static void fails(String expectedMessage, byte[] image) {
        SafetensorsException e = fails(image);
        assertEquals(expectedMessage, e.getMessage());
        assertEquals(Path.of(FILE), e.file());
    }

    /** The error is about tensor "w" and reads {@code mem.safetensors: tensor "w": <detail>}. */
    private static void failsOnW(String detail, byte[] image) {
        SafetensorsException e = fails(image);
        assertEquals(FILE + ": tensor \"w\": " + detail, e.getMessage());
        assertEquals("w", e.tensor());
    }

    @Test
    void aWellFormedHeaderOpens() {
        try (SafetensorsFile f = Images.parse(image(entry("\"F32\"", "[2,3]", "[0,24]"), 24))) {
            assertEquals(1, f.entries().size());
            assertEquals(6, f.require("w").numel());
        }
    }

    // ------------------------------------------------------------------------------------------------ framing

    @Test
    void fileShorterThanTheLengthField() {
        fails(FILE + ": file is 5 bytes, expected at least 8 (the header length)", new byte[5]);
        fails(FILE + ": file is 0 bytes, expected at least 8 (the header length)", new byte[0]);
    }

    @Test
    void headerLengthZero() {
        fails(FILE + ": header length is 0, expected at least 2 (\"{}\")", image(0, new byte[0], 16));
    }

    @Test
    void headerLengthAboveTheCap() {
        fails(FILE + ": header length is 9223372036854775808 bytes, expected at most 100000000", image(Long.MIN_VALUE, new byte[8], 0));
        fails(FILE + ": header length is 18446744073709551615 bytes, expected at most 100000000", image(-1L, new byte[8], 0));
        fails(FILE + ": header length is 1099511627776 bytes, expected at most 100000000", image(1L << 40, new byte[8], 0));
        fails(FILE + ": header length is 100000001 bytes, expected at most 100000000", image(100_000_001L, new byte[8], 0));
    }

    @Test
    void headerLengthBeyondTheFile() {
        fails(FILE + ": header length is 1000 bytes, but the file has only 10 after the 8-byte length", image(1000, new byte[10], 0));
        fails(FILE + ": header length is 9 bytes, but the file has only 8 after the 8-byte length",
                image(9, "{}      ".getBytes(StandardCharsets.US_ASCII), 0));
    }

    @Test
    void headerNotUtf8() {
        byte[] header = "{\"w\u00e9\":1}    ".getBytes(StandardCharsets.ISO_8859_1);   // a lone 0xE9 byte
        fails(FILE + ": header: not valid UTF-8: malformed sequence at byte 3 (0xE9)", image(header.length, header, 0));
    }

    @Test
    void headerNotJson() {
        SafetensorsException e = fails(image("{\"w\": ", 0));
        assertTrue(e.getMessage().startsWith(FILE + ": header: invalid JSON at line 1, column "), e.getMessage());
        assertNull(e.tensor());
        SafetensorsException nul = fails(image(8, "{}\0\0\0\0\0\0".getBytes(StandardCharsets.US_ASCII), 0));
        assertTrue(nul.getMessage().startsWith(FILE + ": header: invalid JSON"), "NUL padding is not JSON whitespace");
        SafetensorsException duplicate = fails(image("{\"w\":{},\"w\":{}}", 0));
        assertTrue(duplicate.getMessage().contains("Duplicate field 'w'"), duplicate.getMessage());
    }

    @Test
    void headerNotAnObject() {
        fails(FILE + ": header: (document): found [1,2], expected a JSON object", image("[1,2]", 0));
        fails(FILE + ": header: (document): found an empty document, expected a JSON object", image("        ", 0));
    }

    @Test
    void hostileNestingIsRefused() {
        String deep = "{\"w\":" + "[".repeat(1_000_000) + "]".repeat(1_000_000) + "}";
        SafetensorsException e = fails(image(deep, 0));
        assertTrue(e.getMessage().contains("nesting depth"), e.getMessage());
    }

    // ------------------------------------------------------------------------------------------------ entries

    @Test
    void entryNotAnObject() {
        failsOnW("/w: found 3, expected object", image("{\"w\":3}", 0));
        failsOnW("/w: found null, expected object", image("{\"w\":null}", 0));
    }

    @Test
    void missingFields() {
        failsOnW("/w/dtype: missing, expected string", image("{\"w\":{\"shape\":[],\"data_offsets\":[0,4]}}", 4));
        failsOnW("/w/shape: missing, expected list of long", image("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4));
        failsOnW("/w/data_offsets: missing, expected list of long", image("{\"w\":{\"dtype\":\"F32\",\"shape\":[]}}", 4));
    }

    @Test
    void unknownOrUnsupportedDtype() {
        failsOnW("dtype \"Q9\", expected one of F32, F16, BF16, I32, I64", image(entry("\"Q9\"", "[1]", "[0,4]"), 4));
        failsOnW("dtype \"f32\", expected one of F32, F16, BF16, I32, I64", image(entry("\"f32\"", "[1]", "[0,4]"), 4));
        failsOnW("dtype \"F64\" (a safetensors dtype koala4j does not read), expected one of F32, F16, BF16, I32, I64",
                image(entry("\"F64\"", "[1]", "[0,8]"), 8));
        failsOnW("/w/dtype: found 32, expected string", image(entry("32", "[1]", "[0,4]"), 4));
    }

    @Test
    void shapeOfWrongType() {
        failsOnW("/w/shape: found 3, expected list of long", image(entry("\"F32\"", "3", "[0,12]"), 12));
        failsOnW("/w/shape/0: found 1.5, expected integer", image(entry("\"F32\"", "[1.5]", "[0,4]"), 4));
        failsOnW("/w/shape/0: found \"2\", expected integer", image(entry("\"F32\"", "[\"2\"]", "[0,8]"), 8));
        failsOnW("/w/shape/1: found 1180591620717411303424, expected integer in [-2^63, 2^63)",
                image(entry("\"F32\"", "[1,1180591620717411303424]", "[0,4]"), 4));
    }

    @Test
    void shapeNegative() {
        failsOnW("shape [2, -1] has -1 at dim 1, expected a non-negative size", image(entry("\"F32\"", "[2,-1]", "[0,0]"), 0));
    }

    @Test
    void shapeWithTooManyDims() {
        failsOnW("shape has 9 dimensions, expected at most 8", image(entry("\"F32\"", "[1,1,1,1,1,1,1,1,1]", "[0,4]"), 4));
    }

    @Test
    void shapeOverflow() {
        failsOnW("shape [1099511627776, 1099511627776] of F32 has more than 2^63-1 bytes, expected a size that fits in a long",
                image(entry("\"F32\"", "[1099511627776,1099511627776]", "[0,0]"), 0));
        // the element count fits, the byte count does not
        failsOnW("shape [2305843009213693952] of I64 has more than 2^63-1 bytes, expected a size that fits in a long",
                image(entry("\"I64\"", "[2305843009213693952]", "[0,0]"), 0));
        // as in the reference, a 0 after an overflowing prefix does not rescue it
        failsOnW("shape [1099511627776, 1099511627776, 0] of F32 has more than 2^63-1 bytes, expected a size that fits in a long",
                image(entry("\"F32\"", "[1099511627776,1099511627776,0]", "[0,0]"), 0));
    }

    @Test
    void offsetsMalformed() {
        failsOnW("data_offsets [0] has 1 values, expected 2 ([begin, end])", image(entry("\"F32\"", "[1]", "[0]"), 4));
        failsOnW("data_offsets [0, 4, 8] has 3 values, expected 2 ([begin, end])", image(entry("\"F32\"", "[1]", "[0,4,8]"), 4));
        failsOnW("/w/data_offsets: found \"0-4\", expected list of long", image(entry("\"F32\"", "[1]", "\"0-4\""), 4));
        failsOnW("/w/data_offsets/1: found 4.0, expected integer", image(entry("\"F32\"", "[1]", "[0,4.0]"), 4));
        failsOnW("data_offsets [-4, 0], expected non-negative offsets", image(entry("\"F32\"", "[1]", "[-4,0]"), 4));
        failsOnW("data_offsets [8, 4], expected begin <= end", image(entry("\"F32\"", "[1]", "[8,4]"), 8));
    }

    @Test
    void offsetsBeyondTheData() {
        failsOnW("data_offsets [0, 4] end beyond the data section, expected end <= 3", image(entry("\"F32\"", "[1]", "[0,4]"), 3));
        failsOnW("data_offsets [0, 9223372036854775807] end beyond the data section, expected end <= 4",
                image(entry("\"F32\"", "[1]", "[0,9223372036854775807]"), 4));
    }

    @Test
    void byteLengthDisagreesWithShape() {
        failsOnW("data_offsets [0, 8] span 8 bytes, expected 12 (3 elements of F32, shape [3])",
                image(entry("\"F32\"", "[3]", "[0,8]"), 8));
        failsOnW("data_offsets [0, 4] span 4 bytes, expected 2 (1 elements of BF16, shape [])",
                image(entry("\"BF16\"", "[]", "[0,4]"), 4));
    }

    @Test
    void overlappingRanges() {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        failsOnW("data_offsets [4, 12] overlap tensor \"a\" at [0, 8], expected disjoint ranges", image(header, 12));
        String same = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"w\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        failsOnW("data_offsets [0, 4] overlap tensor \"a\" at [0, 4], expected disjoint ranges", image(same, 4));
    }

    @Test
    void gapsAreRefusedAsTheReferenceDoes() {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}";
        failsOnW("data_offsets [12, 20] leave bytes [8, 12) of the data section unused (after tensor \"a\"), expected tensors to follow each other without gaps",
                image(header, 20));
        failsOnW("data_offsets [4, 8] leave bytes [0, 4) of the data section unused (after its start), expected tensors to follow each other without gaps",
                image(entry("\"F32\"", "[1]", "[4,8]"), 8));
    }

    @Test
    void trailingBytesAreRefusedAsTheReferenceDoes() {
        fails(FILE + ": data section is 12 bytes but its tensors cover only the first 8, expected the last tensor to end the file",
                image(entry("\"F32\"", "[2]", "[0,8]"), 12));
        fails(FILE + ": data section is 3 bytes but its tensors cover only the first 0, expected the last tensor to end the file",
                image("{}", 3));
    }

    @Test
    void tensorsInAnyHeaderOrderAreSortedByOffset() {
        String header = "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                + "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12],\"extra\":[1]}}";
        byte[] bytes = image(header, 12);
        try (SafetensorsFile f = Images.parse(bytes)) {
            assertEquals(java.util.List.of("a", "z", "b", "x"), f.entries().stream().map(TensorEntry::name).toList());
            Images.assertConsistent(f, MemorySegment.ofArray(bytes));
        }
    }

    // ------------------------------------------------------------------------------------------------ metadata

    @Test
    void metadataMustBeAStringMap() {
        fails(FILE + ": /__metadata__: found 3, expected object of strings", image("{\"__metadata__\":3}", 0));
        fails(FILE + ": /__metadata__/a: found 1, expected string", image("{\"__metadata__\":{\"a\":1}}", 0));
        fails(FILE + ": /__metadata__/a: found {\"b\":\"c\"}, expected string", image("{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}", 0));
        try (SafetensorsFile f = Images.parse(image("{\"__metadata__\":null}", 0))) {
            assertEquals(Map.of(), f.metadata(), "serde reads null as no metadata");
        }
        try (SafetensorsFile f = Images.parse(image("{\"__metadata__\":{\"format\":\"pt\"}}", 0))) {
            assertEquals(Map.of("format", "pt"), f.metadata());
        }
    }

    @Test
    void theSameChecksRunOnMappedFiles(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("bad.safetensors");
        Files.write(file, image(entry("\"F32\"", "[3]", "[0,8]"), 8));
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(file));
        assertEquals(file + ": tensor \"w\": data_offsets [0, 8] span 8 bytes, expected 12 (3 elements of F32, shape [3])", e.getMessage());
        Path tiny = dir.resolve("tiny.safetensors");
        Files.write(tiny, new byte[3]);
        assertEquals(tiny + ": file is 3 bytes, expected at least 8 (the header length)",
                assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(tiny)).getMessage());
    }
}
