package koala4j.server;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;
import koala4j.server.store.Store;

/**
 * The arena's routes: its page and assets, the model list with limits and availability, blind battles and votes,
 * the leaderboard, the gallery, and stored images at {@code /images/{id}.png} (ids are 128 random bits, so the
 * URL itself is the capability; they are served without an API key so that {@code <img>} works).
 */
final class ArenaRoutes {

    private static final Map<String, String> ASSETS = Map.of(
            "arena.js", "text/javascript; charset=utf-8",
            "arena.css", "text/css; charset=utf-8");
    /** The page loads only its own script and style; prompts are only ever set as text (see arena.js). */
    static final String CSP = "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self';"
            + " connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

    private static final SecureRandom RANDOM = new SecureRandom();

    private final KoalaServer server;

    ArenaRoutes(KoalaServer server) {
        this.server = server;
    }

    void register(RoutesConfig r) {
        r.get("/", ctx -> asset(ctx, "index.html", "text/html; charset=utf-8"));
        r.get("/static/{name}", ctx -> {
            String type = ASSETS.get(ctx.pathParam("name"));
            if (type == null) {
                throw ApiError.notFound("not_found", "no asset " + ImageRequests.quote(ctx.pathParam("name")));
            }
            asset(ctx, ctx.pathParam("name"), type);
        });
        r.get("/images/{file}", this::image);
        r.get("/api/config", this::config);
        r.get("/api/models", this::models);
        r.post("/api/battles", this::battle);
        r.post("/api/battles/{id}/vote", this::vote);
        r.get("/api/leaderboard", this::leaderboard);
        r.get("/api/gallery", this::gallery);
    }

    private static void asset(Context ctx, String name, String type) throws IOException {
        try (var in = ArenaRoutes.class.getResourceAsStream("/koala4j/web/" + name)) {
            if (in == null) {
                throw ApiError.internal("resource koala4j/web/" + name + " is missing from the jar");
            }
            ctx.contentType(type);
            ctx.header("Content-Security-Policy", CSP);
            ctx.header("Cache-Control", "no-cache");
            ctx.result(in.readAllBytes());
        }
    }

    private void image(Context ctx) throws IOException {
        String file = ctx.pathParam("file");
        if (!file.endsWith(".png") || !Generations.ID.matcher(file.substring(0, file.length() - 4)).matches()) {
            throw ApiError.notFound("image_not_found", "no image " + ImageRequests.quote(file)
                    + " (image names are 32 hex digits and .png)");
        }
        String id = file.substring(0, file.length() - 4);
        Path path = server.generations().imageFile(id);
        if (server.store().imageGeneration(id).isEmpty() || !Files.isRegularFile(path)) {
            throw ApiError.notFound("image_not_found", "no image " + id);
        }
        ctx.contentType("image/png");
        ctx.header("Cache-Control", "public, max-age=31536000, immutable");
        ctx.result(Files.readAllBytes(path));
    }

    private void config(Context ctx) {
        ObjectNode body = Http.JSON.createObjectNode();
        body.put("auth_required", !server.config().apiKeys().isEmpty());
        ServerConfig.Limits l = server.config().limits();
        body.putObject("limits").put("max_prompt", l.maxPromptChars()).put("max_n", l.maxN())
                .put("max_side", l.maxSide()).put("max_steps", l.maxSteps()).put("max_compare", 9);
        Http.json(ctx, 200, body);
    }

    private void models(Context ctx) {
        ObjectNode body = Http.JSON.createObjectNode();
        ArrayNode list = body.putArray("models");
        for (ImageModel m : server.imageModels().values()) {
            ObjectNode item = list.addObject();
            item.put("id", m.id());
            item.put("name", m.displayName());
            item.put("provider", m.provider());
            item.put("available", m.unavailableReason() == null);
            item.put("reason", m.unavailableReason());
            ImageModel.Limits l = m.limits();
            ObjectNode limits = item.putObject("limits");
            limits.put("max_prompt", Math.min(l.maxPromptChars(), server.config().limits().maxPromptChars()));
            limits.put("max_n", Math.min(l.maxN(), server.config().limits().maxN()));
            ArrayNode sizes = limits.putArray("sizes");
            l.sizes().forEach(sizes::add);
            limits.put("max_side", Math.min(l.maxSide(), server.config().limits().maxSide()));
            limits.put("extensions", l.extensions());
            limits.put("default_size", l.defaultSize());
        }
        ArrayNode chats = body.putArray("chat_models");
        for (ChatModel m : server.chatModels().values()) {
            chats.addObject().put("id", m.id()).put("name", m.displayName());
        }
        Http.json(ctx, 200, body);
    }

    /**
     * Starts a blind battle: two different available models drawn at random get the same prompt (and, where they
     * take it, the same seed and parameters); their names stay hidden until the vote.
     */
    private void battle(Context ctx) {
        ObjectNode body = Http.readJson(ctx, server.config().limits().maxBodyBytes());
        List<ImageModel> available = new ArrayList<>();
        for (ImageModel m : server.imageModels().values()) {
            if (m.unavailableReason() == null) {
                available.add(m);
            }
        }
        if (available.size() < 2) {
            throw ApiError.conflict("not_enough_models", "blind mode needs two available models, this server has "
                    + available.size());
        }
        ImageModel left = available.remove(RANDOM.nextInt(available.size()));
        ImageModel right = available.get(RANDOM.nextInt(available.size()));
        if (!body.hasNonNull("seed")) {
            body.put("seed", RANDOM.nextLong(1L << 32));
        }
        String battleId = Generations.newId();
        ImageRequests.ImageRequest l = server.parseImageRequest(sideBody(body, left), false);
        ImageRequests.ImageRequest r = server.parseImageRequest(sideBody(body, right), false);
        Job<Generations.Result> leftJob = server.generations().submit(l.model(), l.spec(), null, battleId);
        Job<Generations.Result> rightJob;
        try {
            rightJob = server.generations().submit(r.model(), r.spec(), null, battleId);
        } catch (RuntimeException e) {
            leftJob.cancel("the other side of the battle was not admitted");
            throw e;
        }
        try {
            server.store().insertBattle(new Store.Battle(battleId, System.currentTimeMillis(), l.spec().prompt(),
                    left.id(), right.id(), leftJob.id, rightJob.id, null));
        } catch (RuntimeException e) {
            leftJob.cancel("the battle could not be stored");
            rightJob.cancel("the battle could not be stored");
            throw e;
        }
        ObjectNode out = Http.JSON.createObjectNode();
        out.put("id", battleId);
        out.put("prompt", l.spec().prompt());
        out.set("left", OpenAiRoutes.status(leftJob));
        out.set("right", OpenAiRoutes.status(rightJob));
        Http.json(ctx, 201, out);
    }

    /** The battle's request for one model: what it accepts of the shared prompt and parameters. */
    private static ObjectNode sideBody(ObjectNode shared, ImageModel model) {
        ObjectNode b = Http.JSON.createObjectNode();
        b.put("model", model.id());
        for (var e : shared.properties()) {
            String k = e.getKey();
            if (k.equals("prompt")) {
                b.set(k, e.getValue());
            } else if (ImageRequests.EXTENSIONS.contains(k) && model.limits().extensions()) {
                b.set(k, e.getValue());
            } else if (k.equals("size") && model.limits().sizes().isEmpty()) {
                b.set(k, e.getValue());
            } else if (!k.equals("model") && !ImageRequests.EXTENSIONS.contains(k) && !k.equals("size")) {
                throw ApiError.invalid(k, "a battle takes prompt, size and " + String.join(", ", ImageRequests.EXTENSIONS)
                        + "; not " + k);
            }
        }
        b.put("n", 1);
        return b;
    }

    private void vote(Context ctx) {
        String id = ctx.pathParam("id");
        if (!Generations.ID.matcher(id).matches()) {
            throw ApiError.invalid("id", "battle id " + ImageRequests.quote(id) + ": expected 32 hex digits");
        }
        ObjectNode body = Http.readJson(ctx, 4096);
        String winner = body.hasNonNull("winner") ? ImageRequests.string(body, "winner", 8) : "";
        if (!List.of("left", "right", "tie").contains(winner)) {
            throw ApiError.invalid("winner", "winner " + ImageRequests.quote(winner) + ": expected left, right or tie");
        }
        Store store = server.store();
        Store.Battle battle = store.battle(id).orElseThrow(() -> ApiError.notFound("battle_not_found", "no battle " + id));
        for (String gen : List.of(battle.leftGeneration(), battle.rightGeneration())) {
            String status = store.generation(gen).map(Store.Generation::status).orElse("missing");
            if (!status.equals("done")) {
                throw ApiError.conflict("battle_not_finished", "battle " + id + " cannot be voted on: generation " + gen
                        + " is " + status);
            }
        }
        if (!store.vote(id, winner, System.currentTimeMillis())) {
            throw ApiError.conflict("already_voted", "battle " + id + " has already been voted on");
        }
        ObjectNode out = Http.JSON.createObjectNode();
        out.put("id", id);
        out.put("winner", winner);
        out.set("left", modelRef(battle.leftModel()));
        out.set("right", modelRef(battle.rightModel()));
        Http.json(ctx, 200, out);
    }

    private ObjectNode modelRef(String id) {
        ImageModel m = server.imageModels().get(id);
        return Http.JSON.createObjectNode().put("id", id).put("name", m == null ? id : m.displayName());
    }

    private void leaderboard(Context ctx) {
        List<Store.Vote> votes = server.store().votes();
        ObjectNode body = Http.JSON.createObjectNode();
        body.put("votes", votes.size());
        body.put("method", "elo (initial 1000, K 32, ties half)");
        ArrayNode rows = body.putArray("rows");
        for (Leaderboard.Row r : Leaderboard.compute(votes, List.copyOf(server.imageModels().keySet()))) {
            ObjectNode row = rows.addObject();
            row.set("model", modelRef(r.model()));
            row.put("rating", Math.round(r.rating() * 10) / 10.0);
            row.put("votes", r.votes());
            row.put("wins", r.wins());
            row.put("losses", r.losses());
            row.put("ties", r.ties());
        }
        Http.json(ctx, 200, body);
    }

    private void gallery(Context ctx) {
        String q = ctx.queryParam("q");
        if (q != null && q.length() > 200) {
            throw ApiError.invalid("q", "q: longer than 200 characters");
        }
        int limit = 48;
        Long before = null;
        try {
            if (ctx.queryParam("limit") != null) {
                limit = Integer.parseInt(ctx.queryParam("limit"));
            }
            if (ctx.queryParam("before") != null) {
                before = Long.parseLong(ctx.queryParam("before"));
            }
        } catch (NumberFormatException e) {
            throw ApiError.invalid("limit", "limit and before: expected integers");
        }
        if (limit < 1 || limit > 200) {
            throw ApiError.invalid("limit", "limit " + limit + ": expected 1 to 200");
        }
        ObjectNode body = Http.JSON.createObjectNode();
        ArrayNode items = body.putArray("items");
        for (Store.Generation g : server.store().gallery(q, limit, before)) {
            ObjectNode item = items.addObject();
            item.put("id", g.id());
            item.put("created_ms", g.createdMs());
            item.set("model", modelRef(g.model()));
            item.put("prompt", g.prompt());
            item.put("negative_prompt", g.negativePrompt());
            Generations.putNullable(item, "seed", g.seed());
            Generations.putNullable(item, "steps", g.steps());
            Generations.putNullable(item, "guidance", g.guidance());
            item.put("scheduler", g.scheduler());
            item.put("size", g.width() + "x" + g.height());
            Generations.putNullable(item, "seconds", g.seconds());
            item.put("battle", g.battleId() != null);
            ArrayNode urls = item.putArray("images");
            for (Store.StoredImage img : g.images()) {
                urls.add("/images/" + img.id() + ".png");
            }
        }
        Http.json(ctx, 200, body);
    }
}
