package koala4j.server;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import koala4j.pipelines.Cancel;
import koala4j.pipelines.Progress;

/**
 * OpenAI's image models (dall-e-2, dall-e-3) through {@code POST {base}/images/generations}, with their published
 * request limits: dall-e-2 takes prompts up to 1000 characters, n 1..10 and 256x256, 512x512 or 1024x1024;
 * dall-e-3 prompts up to 4000 characters, n = 1 and 1024x1024, 1792x1024 or 1024x1792 (plus quality and style).
 * Without an API key the model is listed as unavailable with that reason.
 */
final class OpenAiImageModel implements ImageModel {

    static final Limits DALL_E_2 = new Limits(1000, 10, List.of("256x256", "512x512", "1024x1024"), 1024, false,
            "1024x1024");
    static final Limits DALL_E_3 = new Limits(4000, 1, List.of("1024x1024", "1792x1024", "1024x1792"), 1792, false,
            "1024x1024");

    /** The default base URL (OpenAI's); OPENAI_BASE_URL or --openai-base-url points elsewhere. */
    static final URI DEFAULT_BASE = URI.create("https://api.openai.com/v1");

    private static final ObjectMapper JSON = new ObjectMapper();

    private final String model;
    private final URI base;
    private final String apiKey;
    private final HttpClient http;
    private final Duration timeout;

    OpenAiImageModel(String model, URI base, String apiKey, HttpClient http, Duration timeout) {
        if (!model.equals("dall-e-2") && !model.equals("dall-e-3")) {
            throw new IllegalArgumentException("OpenAI image model " + model + ": expected dall-e-2 or dall-e-3");
        }
        this.model = model;
        this.base = base;
        this.apiKey = apiKey == null || apiKey.isBlank() ? null : apiKey.strip();
        this.http = http;
        this.timeout = timeout;
    }

    @Override
    public String id() {
        return model;
    }

    @Override
    public String displayName() {
        return model.equals("dall-e-2") ? "DALL·E 2 (OpenAI)" : "DALL·E 3 (OpenAI)";
    }

    @Override
    public String provider() {
        return "openai";
    }

    @Override
    public String unavailableReason() {
        return apiKey == null ? "OPENAI_API_KEY is not set" : null;
    }

    @Override
    public Limits limits() {
        return model.equals("dall-e-2") ? DALL_E_2 : DALL_E_3;
    }

    @Override
    public Output generate(Spec spec, Progress progress, Cancel cancel) throws Exception {
        if (apiKey == null) {
            throw ApiError.unavailable("model", model + " is unavailable: " + unavailableReason());
        }
        String size = (spec.width() == null ? 1024 : spec.width()) + "x" + (spec.height() == null ? 1024 : spec.height());
        ObjectNode body = JSON.createObjectNode();
        body.put("model", model);
        body.put("prompt", spec.prompt());
        body.put("n", spec.n());
        body.put("size", size);
        body.put("response_format", "b64_json");
        if (spec.quality() != null) {
            body.put("quality", spec.quality());
        }
        if (spec.style() != null) {
            body.put("style", spec.style());
        }
        HttpRequest request = HttpRequest.newBuilder(URI.create(base.toString().replaceAll("/+$", "") + "/images/generations"))
                .timeout(timeout)
                .header("Authorization", "Bearer " + apiKey)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body)))
                .build();
        CompletableFuture<HttpResponse<String>> pending = http.sendAsync(request, HttpResponse.BodyHandlers.ofString());
        HttpResponse<String> response;
        while (true) {
            try {
                response = pending.get(200, TimeUnit.MILLISECONDS);
                break;
            } catch (TimeoutException e) {
                if (cancel.requested()) {
                    pending.cancel(true);
                    throw new CancellationException("generation cancelled");
                }
            } catch (ExecutionException e) {
                throw ApiError.upstream(502, model + ": the provider at " + base + " could not be reached: "
                        + e.getCause().getMessage());
            }
        }
        JsonNode json;
        try {
            json = JSON.readTree(response.body());
        } catch (Exception e) {
            throw ApiError.upstream(502, model + ": the provider answered HTTP " + response.statusCode()
                    + " with a body that is not JSON");
        }
        if (response.statusCode() != 200) {
            String message = json.path("error").path("message").asText("HTTP " + response.statusCode());
            int status = switch (response.statusCode()) {
                case 400 -> 400;
                case 429 -> 429;
                default -> 502;
            };
            throw ApiError.upstream(status, model + ": the provider answered " + response.statusCode() + ": " + message);
        }
        List<byte[]> pngs = new ArrayList<>();
        List<String> revised = new ArrayList<>();
        for (JsonNode item : json.path("data")) {
            if (!item.hasNonNull("b64_json")) {
                throw ApiError.upstream(502, model + ": the provider's data item has no b64_json");
            }
            pngs.add(Base64.getDecoder().decode(item.get("b64_json").asText()));
            revised.add(item.hasNonNull("revised_prompt") ? item.get("revised_prompt").asText() : null);
        }
        if (pngs.size() != spec.n()) {
            throw ApiError.upstream(502, model + ": asked for " + spec.n() + " images, the provider returned " + pngs.size());
        }
        String[] wh = size.split("x");
        return new Output(pngs, revised, null, null, null, null, null, Integer.parseInt(wh[0]), Integer.parseInt(wh[1]));
    }
}
