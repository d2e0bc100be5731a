package koala4j.pipelines;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;

import org.junit.jupiter.api.Test;

import koala4j.io.json.Json;

/**
 * The logits processors against values worked out by hand from transformers' code (logits_process.py):
 * RepetitionPenaltyLogitsProcessor, TopKLogitsWarper, TopPLogitsWarper; and the draw's frequencies.
 */
class SamplerTest {

    private static final float NEG = Float.NEGATIVE_INFINITY;

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeOncePerToken() {
        float[] s = {2f, -1f, 0.5f, 3f};
        Sampler.penalize(s, new int[] {0, 1, 1, 0, 9}, 4, 2f);    // id 9 is past the length given
        assertArrayEquals(new float[] {1f, -2f, 0.5f, 3f}, s);
    }

    @Test
    void topKKeepsTiesWithTheKth() {
        float[] s = {1f, 3f, 2f, 2f, 0f};
        LogitsProcessing.topK(s, 2, 1);
        assertArrayEquals(new float[] {NEG, 3f, 2f, 2f, NEG}, s);
    }

    @Test
    void topPDropsTheTailWhoseMassIsAtMostOneMinusP() {
        // probabilities 0.5, 0.3, 0.15, 0.05: ascending cumulative 0.05, 0.2, 0.5, 1; with top_p 0.75 those <= 0.25 go
        float[] s = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.15), (float) Math.log(0.05)};
        float[] kept = s.clone();
        LogitsProcessing.topP(kept, 0.75f, 1);
        assertArrayEquals(new float[] {s[0], s[1], NEG, NEG}, kept);
        float[] one = s.clone();
        LogitsProcessing.topP(one, 0.01f, 1);
        assertArrayEquals(new float[] {s[0], NEG, NEG, NEG}, one, "the most likely token always stays");
    }

    @Test
    void drawsFollowTheSoftmax() {
        SamplingParams p = SamplingParams.greedy(1, List.of()).withSampling(1.0, 0, 1.0, 123);
        Sampler sampler = new Sampler(p);
        float[] logits = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.2)};
        int[] counts = new int[3];
        int n = 20_000;
        for (int i = 0; i < n; i++) {
            counts[sampler.next(logits, new int[0], 0, 0)]++;
        }
        // binomial standard deviation at n=20000 is <= 0.0036; allow 4 of them
        assertEquals(0.5, counts[0] / (double) n, 0.015);
        assertEquals(0.3, counts[1] / (double) n, 0.015);
        assertEquals(0.2, counts[2] / (double) n, 0.015);
        assertEquals(1, Sampler.argmax(new float[] {1f, 5f, 5f}), "torch.argmax takes the first maximum");
    }

    @Test
    void generationConfigDefaultsAreTransformers() {
        SamplingParams p = SamplingParams.fromGenerationConfig(Json.parse(
                "{\"do_sample\": true, \"temperature\": 0.6, \"top_p\": 0.9, \"eos_token_id\": [2, 32000]}",
                "generation_config.json"), List.of(2));
        assertEquals(true, p.doSample());
        assertEquals(0.6, p.temperature());
        assertEquals(50, p.topK(), "transformers' default top_k");
        assertEquals(List.of(2, 32000), p.eosTokenIds());
        assertEquals(20, p.maxNewTokens());
        assertThrows(IllegalArgumentException.class,
                () -> SamplingParams.greedy(1, List.of()).withSampling(0.0, 0, 1.0, 0));
        assertThrows(IllegalArgumentException.class, () -> SamplingParams.greedy(1, List.of()).withStopStrings(List.of("")));
    }

    @Test
    void openAiPenaltiesCountTheOutputOnlyThenTheBiasIsAdded() {
        float[] s = {1f, 1f, 1f, 1f};
        // prompt [3, 3], output [0, 1, 1]: frequency 0.5 per occurrence, presence 0.25 once, bias +2 on id 3
        var a = new SamplingParams.LogitAdjustments(0.5, 0.25, java.util.Map.of(3, 2f, 99, 5f));
        Sampler.adjust(s, new int[] {3, 3, 0, 1, 1}, 2, 5, a);
        assertArrayEquals(new float[] {1f - 0.5f - 0.25f, 1f - 1f - 0.25f, 1f, 3f}, s, 1e-6f);
        assertThrows(IllegalArgumentException.class, () -> new SamplingParams.LogitAdjustments(2.5, 0, java.util.Map.of()));
        // greedy through next(): the penalties steer away from the repeated output token
        SamplingParams p = SamplingParams.greedy(4, java.util.List.of()).withAdjustments(
                new SamplingParams.LogitAdjustments(2, 0, java.util.Map.of()));
        assertEquals(1, new Sampler(p).next(new float[] {2f, 1f}, new int[] {0}, 1, 0));
        assertEquals(0, new Sampler(p).next(new float[] {2f, 1f}, new int[] {0}, 1, 1), "the prompt does not count");
    }
}
