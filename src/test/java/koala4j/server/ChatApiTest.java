package koala4j.server;

import static koala4j.server.TestServers.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.OutputStream;
import java.net.Socket;
import java.io.InputStreamReader;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import koala4j.server.TestServers.Client;

/**
 * {@code POST /v1/chat/completions}: without chat models an OpenAI 404; with one (a test-only model that describes
 * what it was given, word by word) the message parsing (text parts, data: URL images), the JSON answer, the SSE
 * stream in OpenAI's chunk format, and cancellation when a streaming client goes away.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ChatApiTest {

    @TempDir
    Path data;

    /** Answers "role:parts ..." for every message ({@code repeat} times), one word per delta, {@code delayMs} apart. */
    static final class DescribingChatModel implements ChatModel {
        final long delayMs;
        final int repeat;
        final CountDownLatch cancelled = new CountDownLatch(1);

        DescribingChatModel(long delayMs, int repeat) {
            this.delayMs = delayMs;
            this.repeat = repeat;
        }

        @Override
        public String id() {
            return "test/describer";
        }

        @Override
        public String displayName() {
            return "describer";
        }

        @Override
        public Result complete(List<Message> messages, Params params, Stream stream) throws Exception {
            List<String> words = new ArrayList<>();
            for (int r = 0; r < repeat; r++) {
            for (Message m : messages) {
                for (Part p : m.content()) {
                    words.add(switch (p) {
                        case TextPart t -> m.role() + ":" + t.text().replace(' ', '_');
                        case ImagePart i -> m.role() + ":" + i.mediaType() + "/" + i.bytes().length;
                    });
                }
            }
            }
            int limit = params.maxTokens() == null ? words.size() : Math.min(words.size(), params.maxTokens());
            StringBuilder text = new StringBuilder();
            try {
                for (int i = 0; i < limit; i++) {
                    String piece = (i == 0 ? "" : " ") + words.get(i);
                    stream.delta(piece);
                    text.append(piece);
                    Thread.sleep(delayMs);
                }
            } catch (CancellationException e) {
                cancelled.countDown();
                throw e;
            }
            return new Result(text.toString(), limit < words.size() ? "length" : "stop", words.size(), limit, 0);
        }
    }

    private static String request(boolean stream, Integer maxTokens) {
        ObjectNode body = TestServers.JSON.createObjectNode();
        body.put("model", "test/describer");
        body.put("stream", stream);
        if (maxTokens != null) {
            body.put("max_tokens", maxTokens);
        }
        ArrayNode messages = body.putArray("messages");
        messages.addObject().put("role", "system").put("content", "be brief");
        ObjectNode user = messages.addObject().put("role", "user");
        ArrayNode content = user.putArray("content");
        content.addObject().put("type", "text").put("text", "이 그림은 무엇인가요?");
        String png = Base64.getEncoder().encodeToString(new byte[] {(byte) 0x89, 'P', 'N', 'G', 1, 2, 3});
        content.addObject().put("type", "image_url").putObject("image_url").put("url", "data:image/png;base64," + png);
        return body.toString();
    }

    @Test
    void withoutChatModelsTheAnswerIsAnOpenAi404() throws Exception {
        try (KoalaServer server = KoalaServer.start(TestServers.builder(data).build())) {
            HttpResponse<String> r = Client.of(server).post("/v1/chat/completions", request(false, null));
            assertEquals(404, r.statusCode(), r.body());
            JsonNode error = json(r).get("error");
            assertEquals("model_not_found", error.get("code").asText());
            assertEquals("model", error.get("param").asText());
            assertTrue(error.get("message").asText().contains("no chat models are loaded"), r.body());
        }
    }

    @Test
    void completesWithOpenAiShape() throws Exception {
        ServerConfig.Builder b = TestServers.builder(data);
        b.chatModels.add(new DescribingChatModel(0, 1));
        try (KoalaServer server = KoalaServer.start(b.build())) {
            Client client = Client.of(server);
            HttpResponse<String> r = client.post("/v1/chat/completions", request(false, null));
            assertEquals(200, r.statusCode(), r.body());
            JsonNode j = json(r);
            assertEquals("chat.completion", j.get("object").asText());
            assertTrue(j.get("id").asText().startsWith("chatcmpl-"));
            assertEquals("test/describer", j.get("model").asText());
            assertEquals("assistant", j.at("/choices/0/message/role").asText());
            assertEquals("system:be_brief user:이_그림은_무엇인가요? user:image/png/7", j.at("/choices/0/message/content").asText());
            assertEquals("stop", j.at("/choices/0/finish_reason").asText());
            assertEquals(6, j.at("/usage/total_tokens").asInt());
            boolean listed = false;
            for (JsonNode m : json(client.get("/v1/models")).get("data")) {
                listed |= m.get("id").asText().equals("test/describer") && m.get("task").asText().equals("chat");
            }
            assertTrue(listed);
        }
    }

    @Test
    void streamsChunksOverSseEndingWithDone() throws Exception {
        ServerConfig.Builder b = TestServers.builder(data);
        b.chatModels.add(new DescribingChatModel(0, 1));
        try (KoalaServer server = KoalaServer.start(b.build())) {
            HttpResponse<String> r = Client.of(server).post("/v1/chat/completions", request(true, 2));
            assertEquals(200, r.statusCode(), r.body());
            assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
            List<String> data = new ArrayList<>();
            for (String line : r.body().split("\n")) {
                if (line.startsWith("data: ")) {
                    data.add(line.substring(6));
                }
            }
            assertEquals("[DONE]", data.getLast());
            StringBuilder text = new StringBuilder();
            String finish = null;
            for (String d : data.subList(0, data.size() - 1)) {
                JsonNode chunk = TestServers.JSON.readTree(d);
                assertEquals("chat.completion.chunk", chunk.get("object").asText());
                JsonNode delta = chunk.at("/choices/0/delta");
                text.append(delta.path("content").asText(""));
                if (!chunk.at("/choices/0/finish_reason").isNull()) {
                    finish = chunk.at("/choices/0/finish_reason").asText();
                }
            }
            assertEquals("assistant", TestServers.JSON.readTree(data.getFirst()).at("/choices/0/delta/role").asText());
            assertEquals("system:be_brief user:이_그림은_무엇인가요?", text.toString());
            assertEquals("length", finish);
        }
    }

    @Test
    void badMessagesAre400() throws Exception {
        ServerConfig.Builder b = TestServers.builder(data);
        b.chatModels.add(new DescribingChatModel(0, 1));
        try (KoalaServer server = KoalaServer.start(b.build())) {
            Client client = Client.of(server);
            for (String[] c : new String[][] {
                    {"{\"model\":\"test/describer\",\"messages\":[]}", "messages"},
                    {"{\"model\":\"test/describer\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", "messages[0].role"},
                    {"{\"model\":\"test/describer\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                            + "\"image_url\":{\"url\":\"http://127.0.0.1/x.png\"}}]}]}", "messages[0].content[0].image_url.url"},
                    {"{\"model\":\"test/describer\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"audio\"}]}]}",
                            "messages[0].content[0].type"},
                    {"{\"model\":\"test/describer\",\"temperature\":3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                            "temperature"}}) {
                HttpResponse<String> r = client.post("/v1/chat/completions", c[0]);
                assertEquals(400, r.statusCode(), r.body());
                assertEquals(c[1], json(r).at("/error/param").asText(), r.body());
            }
            HttpResponse<String> other = client.post("/v1/chat/completions",
                    "{\"model\":\"other/model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
            assertEquals(404, other.statusCode());
            assertTrue(json(other).at("/error/message").asText().contains("test/describer"));
        }
    }

    @Test
    void aStreamingClientThatLeavesCancelsTheCompletion() throws Exception {
        DescribingChatModel slow = new DescribingChatModel(200, 100);
        ServerConfig.Builder b = TestServers.builder(data);
        b.chatModels.add(slow);
        try (KoalaServer server = KoalaServer.start(b.build())) {
            byte[] body = request(true, null).getBytes(StandardCharsets.UTF_8);
            try (Socket socket = new Socket("127.0.0.1", server.port())) {
                OutputStream out = socket.getOutputStream();
                out.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                out.write(body);
                out.flush();
                BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
                assertEquals("HTTP/1.1 200 OK", in.readLine());
                String line;
                while ((line = in.readLine()) != null && !line.startsWith("data: ")) {
                    // headers and chunk sizes
                }
                assertTrue(line != null && line.contains("chat.completion.chunk"), line);
            }
            assertTrue(slow.cancelled.await(15, TimeUnit.SECONDS), "the model saw the cancellation");
        }
    }

    private static String requestWithImageUrl(String url) {
        ObjectNode body = TestServers.JSON.createObjectNode();
        body.put("model", "test/describer");
        ArrayNode content = body.putArray("messages").addObject().put("role", "user").putArray("content");
        content.addObject().put("type", "image_url").putObject("image_url").put("url", url);
        return body.toString();
    }

    /**
     * http(s) image URLs: refused by default with a hint; with --image-urls all downloaded (from a local stand-in
     * server) with the guards a public server needs; with --image-urls public, loopback hosts refused.
     */
    @Test
    void remoteImageUrlsOnlyWhenAllowedAndGuarded() throws Exception {
        byte[] png = {(byte) 0x89, 'P', 'N', 'G', 9, 8, 7, 6};
        com.sun.net.httpserver.HttpServer images = com.sun.net.httpserver.HttpServer.create(
                new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0), 0);
        images.createContext("/koala.png", x -> {
            x.getResponseHeaders().add("Content-Type", "image/png");
            x.sendResponseHeaders(200, png.length);
            x.getResponseBody().write(png);
            x.close();
        });
        images.createContext("/page.html", x -> {
            x.getResponseHeaders().add("Content-Type", "text/html");
            x.sendResponseHeaders(200, 2);
            x.getResponseBody().write("hi".getBytes(StandardCharsets.UTF_8));
            x.close();
        });
        images.createContext("/moved", x -> {
            x.getResponseHeaders().add("Location", "/koala.png");
            x.sendResponseHeaders(302, -1);
            x.close();
        });
        images.createContext("/huge.png", x -> {
            x.getResponseHeaders().add("Content-Type", "image/png");
            x.sendResponseHeaders(200, 0);                       // chunked: no length to refuse up front
            try (OutputStream out = x.getResponseBody()) {
                byte[] chunk = new byte[1 << 20];
                for (int i = 0; i <= RemoteImages.MAX_BYTES >> 20; i++) {
                    out.write(chunk);
                }
            } catch (java.io.IOException gone) {
                // the server stopped reading: expected
            }
        });
        images.start();
        String base = "http://127.0.0.1:" + images.getAddress().getPort();
        try {
            ServerConfig.Builder b = TestServers.builder(data);
            b.chatModels.add(new DescribingChatModel(0, 1));
            try (KoalaServer server = KoalaServer.start(b.build())) {
                HttpResponse<String> r = Client.of(server).post("/v1/chat/completions", requestWithImageUrl(base + "/koala.png"));
                assertEquals(400, r.statusCode(), r.body());
                assertEquals("messages[0].content[0].image_url.url", json(r).at("/error/param").asText());
                assertTrue(json(r).at("/error/message").asText().contains("--image-urls public"), r.body());
            }
            b.imageUrls = ServerConfig.ImageUrls.ALL;
            try (KoalaServer server = KoalaServer.start(b.build())) {
                Client client = Client.of(server);
                HttpResponse<String> ok = client.post("/v1/chat/completions", requestWithImageUrl(base + "/koala.png"));
                assertEquals(200, ok.statusCode(), ok.body());
                assertEquals("user:image/png/" + png.length, json(ok).at("/choices/0/message/content").asText());
                for (String[] bad : new String[][] {
                        {"/page.html", "is of type \"text/html\""},
                        {"/moved", "HTTP 302 (redirects are not followed)"},
                        {"/missing.png", "HTTP 404"},
                        {"/huge.png", "larger than 20 MB"}}) {
                    HttpResponse<String> r = client.post("/v1/chat/completions", requestWithImageUrl(base + bad[0]));
                    assertEquals(400, r.statusCode(), bad[0] + ": " + r.body());
                    assertTrue(json(r).at("/error/message").asText().contains(bad[1]), r.body());
                }
                HttpResponse<String> file = client.post("/v1/chat/completions", requestWithImageUrl("file:///etc/passwd"));
                assertEquals(400, file.statusCode(), file.body());
            }
            b.imageUrls = ServerConfig.ImageUrls.PUBLIC;
            try (KoalaServer server = KoalaServer.start(b.build())) {
                HttpResponse<String> r = Client.of(server).post("/v1/chat/completions", requestWithImageUrl(base + "/koala.png"));
                assertEquals(400, r.statusCode(), r.body());
                assertTrue(json(r).at("/error/message").asText().contains("not a public address"), r.body());
            }
        } finally {
            images.stop(0);
        }
    }

    @Test
    void publicAddressesExcludeLocalPrivateAndSpecialRanges() throws Exception {
        for (String a : new String[] {"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                "0.0.0.0", "100.64.0.1", "224.0.0.1", "::1", "fe80::1", "fd00::1", "::"}) {
            assertTrue(!RemoteImages.isPublic(java.net.InetAddress.getByName(a)), a);
        }
        for (String a : new String[] {"8.8.8.8", "1.1.1.1", "100.128.0.1", "2001:4860:4860::8888"}) {
            assertTrue(RemoteImages.isPublic(java.net.InetAddress.getByName(a)), a);
        }
    }
}
