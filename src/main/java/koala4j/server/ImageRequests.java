package koala4j.server;

import java.security.SecureRandom;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Parses and checks a {@code POST /v1/images/generations} body: OpenAI's fields (model, prompt, n, size,
 * response_format, user, quality, style) and koala4j's extensions (negative_prompt, seed, steps, guidance,
 * scheduler), against the server's limits and the model's own. Every refusal names the field.
 */
final class ImageRequests {

    /** A parsed request. */
    record ImageRequest(ImageModel model, ImageModel.Spec spec, String responseFormat, String user) {
    }

    static final Set<String> OPENAI_FIELDS = Set.of("model", "prompt", "n", "size", "response_format", "user",
            "quality", "style");
    static final Set<String> EXTENSIONS = Set.of("negative_prompt", "seed", "steps", "guidance", "scheduler");

    /** Model ids: a hub id (owner/name) or a folder name; letters, digits, '.', '_', '-'; never "..". */
    static final Pattern MODEL_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?");
    private static final Pattern SIZE = Pattern.compile("(\\d{1,5})x(\\d{1,5})");
    private static final Pattern SCHEDULER = Pattern.compile("[a-z0-9+-]{1,32}");
    private static final SecureRandom RANDOM = new SecureRandom();

    private ImageRequests() {
    }

    static String checkModelId(String id) {
        if (id == null || !MODEL_ID.matcher(id).matches() || id.contains("..")) {
            throw ApiError.invalid("model", "model id " + quote(id) + " is not valid: expected a hub id (owner/name) or a"
                    + " folder name of letters, digits, '.', '_' and '-'");
        }
        return id;
    }

    static ImageRequest parse(ObjectNode body, Map<String, ImageModel> models, ServerConfig.Limits limits,
                              ImageModel defaultModel, boolean tagModel) {
        for (Iterator<String> it = body.fieldNames(); it.hasNext(); ) {
            String field = it.next();
            if (!OPENAI_FIELDS.contains(field) && !EXTENSIONS.contains(field)) {
                throw ApiError.invalid(field, "unrecognized request argument: " + field);
            }
        }
        ImageModel model;
        if (body.hasNonNull("model")) {
            String id = checkModelId(string(body, "model", 200));
            model = models.get(id);
            if (model == null) {
                throw ApiError.modelNotFound(id, "the model '" + id + "' does not exist; GET /v1/models lists the models");
            }
        } else if (defaultModel != null) {
            model = defaultModel;
        } else {
            throw ApiError.invalid("model", "model: required (no local model is loaded to default to)");
        }
        if (model.unavailableReason() != null) {
            throw ApiError.unavailable("model", "the model '" + model.id() + "' is unavailable: " + model.unavailableReason());
        }
        ImageModel.Limits ml = model.limits();
        String prompt = prompt(body, "prompt", Math.min(limits.maxPromptChars(), ml.maxPromptChars()), true);
        int maxN = Math.min(limits.maxN(), ml.maxN());
        int n = body.has("n") ? integer(body, "n", 1, maxN) : 1;
        Integer width = null;
        Integer height = null;
        String size = body.hasNonNull("size") ? string(body, "size", 16) : ml.defaultSize();
        if (size != null && !size.equals("auto")) {
            var m = SIZE.matcher(size);
            if (!m.matches()) {
                throw ApiError.invalid("size", "size " + quote(size) + ": expected WIDTHxHEIGHT, e.g. 512x512");
            }
            width = Integer.parseInt(m.group(1));
            height = Integer.parseInt(m.group(2));
            if (!ml.sizes().isEmpty()) {
                if (!ml.sizes().contains(size)) {
                    throw ApiError.invalid("size", "size " + size + " is not supported by " + model.id() + ": expected one of "
                            + String.join(", ", ml.sizes()));
                }
            } else {
                int maxSide = Math.min(limits.maxSide(), ml.maxSide());
                for (int side : new int[] {width, height}) {
                    if (side < 8 || side > maxSide || side % 8 != 0) {
                        throw ApiError.invalid("size", "size " + size + ": each side must be a multiple of 8 between 8 and "
                                + maxSide);
                    }
                }
            }
        }
        String format = body.hasNonNull("response_format") ? string(body, "response_format", 16) : "url";
        if (!format.equals("url") && !format.equals("b64_json")) {
            throw ApiError.invalid("response_format", "response_format " + quote(format) + ": expected url or b64_json");
        }
        String user = body.hasNonNull("user") ? string(body, "user", 256) : null;
        boolean dallE3 = model.id().equals("dall-e-3");
        String quality = optionalChoice(body, "quality", dallE3, List.of("standard", "hd"), model.id());
        String style = optionalChoice(body, "style", dallE3, List.of("vivid", "natural"), model.id());
        if (!ml.extensions()) {
            for (String ext : EXTENSIONS) {
                if (body.hasNonNull(ext)) {
                    throw ApiError.invalid(ext, ext + " is not supported by " + model.id()
                            + " (a remote model takes only OpenAI's fields)");
                }
            }
        }
        String negative = body.hasNonNull("negative_prompt")
                ? prompt(body, "negative_prompt", limits.maxPromptChars(), false) : null;
        long seed = body.hasNonNull("seed") ? seed(body) : RANDOM.nextLong(1L << 32);
        Integer steps = body.hasNonNull("steps") ? integer(body, "steps", 1, limits.maxSteps()) : null;
        Double guidance = null;
        if (body.hasNonNull("guidance")) {
            JsonNode g = body.get("guidance");
            if (!g.isNumber() || !(g.asDouble() >= 0 && g.asDouble() <= 50)) {
                throw ApiError.invalid("guidance", "guidance " + g + ": expected a number from 0 to 50");
            }
            guidance = g.asDouble();
        }
        String scheduler = null;
        if (body.hasNonNull("scheduler")) {
            scheduler = string(body, "scheduler", 32);
            if (!SCHEDULER.matcher(scheduler).matches()) {
                throw ApiError.invalid("scheduler", "scheduler " + quote(scheduler)
                        + ": expected a scheduler name such as euler, euler-a, dpm++2m, ddim, pndm or lcm");
            }
        }
        var spec = new ImageModel.Spec(prompt, negative, n, width, height, seed, steps, guidance, scheduler, quality, style,
                tagModel);
        return new ImageRequest(model, spec, format, user);
    }

    private static String optionalChoice(ObjectNode body, String field, boolean supported, List<String> values, String model) {
        if (!body.hasNonNull(field)) {
            return null;
        }
        if (!supported) {
            throw ApiError.invalid(field, field + " is only supported by dall-e-3, not " + model);
        }
        String v = string(body, field, 16);
        if (!values.contains(v)) {
            throw ApiError.invalid(field, field + " " + quote(v) + ": expected one of " + String.join(", ", values));
        }
        return v;
    }

    /** A prompt: a string of at most {@code max} characters without control characters other than tab and newlines. */
    static String prompt(JsonNode body, String field, int max, boolean required) {
        if (!body.hasNonNull(field)) {
            if (required) {
                throw ApiError.invalid(field, field + ": required");
            }
            return null;
        }
        JsonNode v = body.get(field);
        if (!v.isTextual()) {
            throw ApiError.invalid(field, field + ": expected a string");
        }
        String s = v.asText();
        if (required && s.isBlank()) {
            throw ApiError.invalid(field, field + ": must not be empty");
        }
        int chars = s.codePointCount(0, s.length());
        if (chars > max) {
            throw ApiError.invalid(field, field + " has " + chars + " characters: the limit is " + max);
        }
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isISOControl(c) && c != '\n' && c != '\r' && c != '\t') {
                throw ApiError.invalid(field, field + ": control character U+" + String.format("%04X", (int) c)
                        + " at index " + i);
            }
        }
        return s;
    }

    static String string(JsonNode body, String field, int max) {
        JsonNode v = body.get(field);
        if (!v.isTextual()) {
            throw ApiError.invalid(field, field + ": expected a string, got " + v.getNodeType().name().toLowerCase());
        }
        if (v.asText().length() > max) {
            throw ApiError.invalid(field, field + ": longer than " + max + " characters");
        }
        return v.asText();
    }

    static int integer(JsonNode body, String field, int min, int max) {
        JsonNode v = body.get(field);
        if (v == null || !v.canConvertToInt() || !v.isIntegralNumber() || v.asInt() < min || v.asInt() > max) {
            throw ApiError.invalid(field, field + " " + v + ": expected an integer from " + min + " to " + max);
        }
        return v.asInt();
    }

    private static long seed(JsonNode body) {
        JsonNode v = body.get("seed");
        if (!v.isIntegralNumber() || !v.canConvertToLong() || v.asLong() < 0) {
            throw ApiError.invalid("seed", "seed " + v + ": expected an integer from 0 to " + Long.MAX_VALUE);
        }
        return v.asLong();
    }

    static String quote(String s) {
        if (s == null) {
            return "null";
        }
        String shown = s.length() > 64 ? s.substring(0, 64) + "..." : s;
        return "\"" + shown.replace("\"", "\\\"") + "\"";
    }
}
