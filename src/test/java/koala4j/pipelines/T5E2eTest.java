package koala4j.pipelines;

import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import koala4j.cli.Main;
import koala4j.io.json.Json;

/**
 * Every run of golden/e2e/t5 (transformers 4.57.6 generate() on a save_pretrained ByT5-shaped T5 v1.1 folder with its
 * ByT5Tokenizer files: four greedy runs including Korean and {@code <extra_id_0>}, one beam search with 3 beams,
 * early stopping, length penalty 1) through {@code koala4j t5 --json}: input ids, output ids and decoded text exact.
 * The same runs against that folder as transformers 5.18 saves it (src/test/resources/transformers5).
 */
class T5E2eTest {

    static Stream<Arguments> runs() {
        Json expected = Json.read(resource("golden/e2e/t5/expected.json"));
        List<Arguments> out = new ArrayList<>();
        List<Json> runs = expected.objects("runs");
        // the golden folder (transformers 4.57) and the same model saved by transformers 5 (tie_word_embeddings true
        // with scale_decoder_outputs false, lm_head stored, extra_special_tokens as a list)
        for (String folder : List.of("golden/e2e/t5/model", "transformers5/t5")) {
            for (int i = 0; i < runs.size(); i++) {
                out.add(Arguments.of(folder, i, runs.get(i)));
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} run {1}")
    @MethodSource("runs")
    void cliReproducesGenerate(String folder, int index, Json run) {
        List<String> args = new ArrayList<>(List.of("t5", "--model", resource(folder).toString(),
                "--input", run.string("input_text"), "--max-new-tokens", Integer.toString(run.intValue("max_new_tokens")),
                "--num-beams", Integer.toString(run.intValue("num_beams")), "--json", "--device", "cpu"));
        if (run.boolOr("early_stopping", false)) {
            args.add("--early-stopping");
        }
        if (run.has("length_penalty")) {
            args.addAll(List.of("--length-penalty", Double.toString(run.doubleValue("length_penalty"))));
        }
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(args.toArray(String[]::new), new PrintWriter(out), new PrintWriter(err));
        assertEquals(0, code, err.toString());
        String printed = out.toString().strip();
        assertTrue(printed.startsWith("{") && !printed.contains("\n"), "one JSON object: " + printed);
        Json got = Json.parse(printed, "stdout");
        Json want = run.object("expected");
        if (want.has("input_ids")) {
            assertEquals(want.intList("input_ids"), got.intList("input_ids"), "input_ids");
        }
        assertArrayEquals(want.intList("output_ids").stream().mapToInt(Integer::intValue).toArray(),
                got.intList("output_ids").stream().mapToInt(Integer::intValue).toArray(), "output_ids");
        assertEquals(want.string("text_skip_special"), got.string("text"), "text");
        if (want.has("text_raw")) {
            assertEquals(want.string("text_raw"), got.string("text_raw"), "text_raw");
        }
        // without --json the text is printed as it decodes, then a newline
        args.remove("--json");
        StringWriter plain = new StringWriter();
        assertEquals(0, Main.run(args.toArray(String[]::new), new PrintWriter(plain), new PrintWriter(new StringWriter())));
        assertEquals(want.string("text_skip_special") + System.lineSeparator(), plain.toString());
    }
}
