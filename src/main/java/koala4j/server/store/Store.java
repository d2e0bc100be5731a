package koala4j.server.store;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Generations, their images, blind battles and votes. SQLite (embedded, {@code jdbc:sqlite:FILE}) by default,
 * PostgreSQL for {@code jdbc:postgresql://...}; the same SQL runs on both. Every write is one committed
 * transaction before the method returns, so whatever a client was told has been stored survives a killed server;
 * SQLite runs in WAL mode with {@code synchronous=FULL} for the same reason.
 *
 * <p>Thread-safe: one connection, used under this object's lock (SQLite serialises writers anyway; a PostgreSQL
 * deployment that needs more goes through several servers).
 */
public final class Store implements AutoCloseable {

    /** A generation as submitted (parameters the client gave; nulls are the model's defaults). */
    public record NewGeneration(String id, long createdMs, String model, String prompt, String negativePrompt, Long seed,
                                Integer steps, Double guidance, String scheduler, Integer width, Integer height, int n,
                                String client, String battleId) {
    }

    /** One stored image: its id (the file name is {@code id.png}) and position in its generation. */
    public record StoredImage(String id, int index, String revisedPrompt) {
    }

    /** What a finished generation actually used, and its images. */
    public record Finished(String negativePrompt, Long seed, Integer steps, Double guidance, String scheduler, int width,
                           int height, double seconds, List<StoredImage> images) {
    }

    public record Generation(String id, long createdMs, String model, String prompt, String negativePrompt, Long seed,
                             Integer steps, Double guidance, String scheduler, Integer width, Integer height, int n,
                             String status, String error, Double seconds, String client, String battleId,
                             List<StoredImage> images) {
    }

    /** A blind comparison; {@code winner} is null until voted. */
    public record Battle(String id, long createdMs, String prompt, String leftModel, String rightModel,
                         String leftGeneration, String rightGeneration, String winner) {
    }

    public record Vote(String battleId, long createdMs, String leftModel, String rightModel, String winner) {
    }

    /** Statuses a generation goes through; {@code interrupted}: the server stopped before it finished. */
    public static final List<String> STATUSES = List.of("queued", "done", "failed", "cancelled", "timeout", "interrupted");

    private final String url;
    private final Connection connection;
    private final int schemaVersion;

    private Store(String url, Connection connection, int schemaVersion) {
        this.url = url;
        this.connection = connection;
        this.schemaVersion = schemaVersion;
    }

    /** Opens (creating and migrating) the database at a JDBC URL. */
    public static Store open(String url) {
        return open(url, Migrations.latest());
    }

    /** Opens and migrates up to {@code targetVersion} (tests use it to build an old schema). */
    static Store open(String url, int targetVersion) {
        boolean sqlite = url.startsWith("jdbc:sqlite:");
        if (!sqlite && !url.startsWith("jdbc:postgresql:")) {
            throw new StoreException("--db " + url + ": expected jdbc:sqlite:FILE or jdbc:postgresql://HOST/DB");
        }
        Connection c = null;
        try {
            c = DriverManager.getConnection(url);
            if (sqlite) {
                try (Statement s = c.createStatement()) {
                    s.execute("PRAGMA journal_mode=WAL");
                    s.execute("PRAGMA synchronous=FULL");
                    s.execute("PRAGMA foreign_keys=ON");
                    s.execute("PRAGMA busy_timeout=10000");
                }
            }
            c.setAutoCommit(false);
            int version = Migrations.migrate(c, url, targetVersion);
            return new Store(url, c, version);
        } catch (SQLException e) {
            close(c);
            throw new StoreException(url + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            close(c);
            throw e;
        }
    }

    private static void close(Connection c) {
        if (c != null) {
            try {
                c.close();
            } catch (SQLException ignored) {
                // the open failure is what the caller hears about
            }
        }
    }

    public String url() {
        return url;
    }

    public int schemaVersion() {
        return schemaVersion;
    }

    @FunctionalInterface
    private interface Tx<T> {
        T run(Connection c) throws SQLException;
    }

    /** Runs {@code body} in one committed transaction. */
    private synchronized <T> T tx(String what, Tx<T> body) {
        try {
            T result = body.run(connection);
            connection.commit();
            return result;
        } catch (SQLException e) {
            try {
                connection.rollback();
            } catch (SQLException ignored) {
                // reported below
            }
            throw new StoreException(url + ": " + what + ": " + e.getMessage(), e);
        }
    }

    public void insertGeneration(NewGeneration g) {
        tx("insert generation " + g.id(), c -> {
            try (PreparedStatement p = c.prepareStatement("INSERT INTO generations (id, created_ms, model, prompt,"
                    + " negative_prompt, seed, steps, guidance, scheduler, width, height, n, status, client, battle_id)"
                    + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)")) {
                p.setString(1, g.id());
                p.setLong(2, g.createdMs());
                p.setString(3, g.model());
                p.setString(4, g.prompt());
                p.setString(5, g.negativePrompt());
                setLong(p, 6, g.seed());
                setInt(p, 7, g.steps());
                setDouble(p, 8, g.guidance());
                p.setString(9, g.scheduler());
                setInt(p, 10, g.width());
                setInt(p, 11, g.height());
                p.setInt(12, g.n());
                p.setString(13, g.client());
                p.setString(14, g.battleId());
                p.executeUpdate();
            }
            return null;
        });
    }

    /** Marks a generation done with what it used and its images (whose files are already on disk). */
    public void finishGeneration(String id, Finished f) {
        tx("finish generation " + id, c -> {
            try (PreparedStatement p = c.prepareStatement("UPDATE generations SET status = 'done', negative_prompt = ?,"
                    + " seed = ?, steps = ?, guidance = ?, scheduler = ?, width = ?, height = ?, seconds = ? WHERE id = ?")) {
                p.setString(1, f.negativePrompt());
                setLong(p, 2, f.seed());
                setInt(p, 3, f.steps());
                setDouble(p, 4, f.guidance());
                p.setString(5, f.scheduler());
                p.setInt(6, f.width());
                p.setInt(7, f.height());
                p.setDouble(8, f.seconds());
                p.setString(9, id);
                if (p.executeUpdate() != 1) {
                    throw new SQLException("no generation " + id);
                }
            }
            try (PreparedStatement p = c.prepareStatement(
                    "INSERT INTO images (id, generation_id, idx, revised_prompt) VALUES (?, ?, ?, ?)")) {
                for (StoredImage img : f.images()) {
                    p.setString(1, img.id());
                    p.setString(2, id);
                    p.setInt(3, img.index());
                    p.setString(4, img.revisedPrompt());
                    p.addBatch();
                }
                p.executeBatch();
            }
            return null;
        });
    }

    /** Ends a generation without images: failed, cancelled or timeout, with the reason. */
    public void endGeneration(String id, String status, String error) {
        if (!STATUSES.contains(status) || status.equals("done") || status.equals("queued")) {
            throw new IllegalArgumentException("status " + status + ": expected failed, cancelled, timeout or interrupted");
        }
        tx("end generation " + id, c -> {
            try (PreparedStatement p = c.prepareStatement("UPDATE generations SET status = ?, error = ? WHERE id = ?")) {
                p.setString(1, status);
                p.setString(2, error);
                p.setString(3, id);
                p.executeUpdate();
            }
            return null;
        });
    }

    /** At start-up: generations left queued by a server that stopped become {@code interrupted}. Returns how many. */
    public int markInterrupted() {
        return tx("mark interrupted generations", c -> {
            try (Statement s = c.createStatement()) {
                return s.executeUpdate("UPDATE generations SET status = 'interrupted', error = 'the server stopped before"
                        + " the generation finished' WHERE status = 'queued'");
            }
        });
    }

    private static final String GENERATION_COLUMNS = "g.id, g.created_ms, g.model, g.prompt, g.negative_prompt, g.seed,"
            + " g.steps, g.guidance, g.scheduler, g.width, g.height, g.n, g.status, g.error, g.seconds, g.client, g.battle_id";

    public Optional<Generation> generation(String id) {
        List<Generation> found = tx("read generation " + id, c -> {
            try (PreparedStatement p = c.prepareStatement("SELECT " + GENERATION_COLUMNS + " FROM generations g WHERE g.id = ?")) {
                p.setString(1, id);
                return withImages(c, readGenerations(p));
            }
        });
        return found.stream().findFirst();
    }

    /**
     * Finished generations, newest first, whose prompt contains {@code query} (case-insensitive for ASCII; null or
     * blank for all), older than {@code beforeMs} when given. Battle generations appear once their battle is voted.
     */
    public List<Generation> gallery(String query, int limit, Long beforeMs) {
        String q = query == null ? "" : query.strip().toLowerCase(Locale.ROOT);
        return tx("gallery", c -> {
            try (PreparedStatement p = c.prepareStatement("SELECT " + GENERATION_COLUMNS + " FROM generations g"
                    + " WHERE g.status = 'done' AND LOWER(g.prompt) LIKE ? ESCAPE '!' AND g.created_ms < ?"
                    + " AND (g.battle_id IS NULL OR EXISTS (SELECT 1 FROM votes v WHERE v.battle_id = g.battle_id))"
                    + " ORDER BY g.created_ms DESC, g.id DESC LIMIT ?")) {
                p.setString(1, "%" + q.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%");
                p.setLong(2, beforeMs == null ? Long.MAX_VALUE : beforeMs);
                p.setInt(3, limit);
                return withImages(c, readGenerations(p));
            }
        });
    }

    /** Number of generations per status (every status present, zero included). */
    public Map<String, Integer> countByStatus() {
        return tx("count generations", c -> {
            Map<String, Integer> counts = new LinkedHashMap<>();
            for (String s : STATUSES) {
                counts.put(s, 0);
            }
            try (Statement s = c.createStatement();
                 ResultSet r = s.executeQuery("SELECT status, COUNT(*) FROM generations GROUP BY status")) {
                while (r.next()) {
                    counts.put(r.getString(1), r.getInt(2));
                }
            }
            return counts;
        });
    }

    /** The generation an image belongs to, when the image id is known. */
    public Optional<String> imageGeneration(String imageId) {
        return Optional.ofNullable(tx("read image " + imageId, c -> {
            try (PreparedStatement p = c.prepareStatement("SELECT generation_id FROM images WHERE id = ?")) {
                p.setString(1, imageId);
                try (ResultSet r = p.executeQuery()) {
                    return r.next() ? r.getString(1) : null;
                }
            }
        }));
    }

    public void insertBattle(Battle b) {
        tx("insert battle " + b.id(), c -> {
            try (PreparedStatement p = c.prepareStatement("INSERT INTO battles (id, created_ms, prompt, left_model,"
                    + " right_model, left_generation, right_generation) VALUES (?, ?, ?, ?, ?, ?, ?)")) {
                p.setString(1, b.id());
                p.setLong(2, b.createdMs());
                p.setString(3, b.prompt());
                p.setString(4, b.leftModel());
                p.setString(5, b.rightModel());
                p.setString(6, b.leftGeneration());
                p.setString(7, b.rightGeneration());
                p.executeUpdate();
            }
            return null;
        });
    }

    public Optional<Battle> battle(String id) {
        return Optional.ofNullable(tx("read battle " + id, c -> {
            try (PreparedStatement p = c.prepareStatement("SELECT b.id, b.created_ms, b.prompt, b.left_model, b.right_model,"
                    + " b.left_generation, b.right_generation, v.winner FROM battles b LEFT JOIN votes v ON v.battle_id = b.id"
                    + " WHERE b.id = ?")) {
                p.setString(1, id);
                try (ResultSet r = p.executeQuery()) {
                    return r.next() ? new Battle(r.getString(1), r.getLong(2), r.getString(3), r.getString(4),
                            r.getString(5), r.getString(6), r.getString(7), r.getString(8)) : null;
                }
            }
        }));
    }

    /** Records the vote of a battle; false when it already has one (a battle is voted once). */
    public boolean vote(String battleId, String winner, long createdMs) {
        if (!List.of("left", "right", "tie").contains(winner)) {
            throw new IllegalArgumentException("winner " + winner + ": expected left, right or tie");
        }
        return tx("vote " + battleId, c -> {
            try (PreparedStatement p = c.prepareStatement("SELECT 1 FROM votes WHERE battle_id = ?")) {
                p.setString(1, battleId);
                try (ResultSet r = p.executeQuery()) {
                    if (r.next()) {
                        return false;
                    }
                }
            }
            try (PreparedStatement p = c.prepareStatement(
                    "INSERT INTO votes (battle_id, created_ms, winner) VALUES (?, ?, ?)")) {
                p.setString(1, battleId);
                p.setLong(2, createdMs);
                p.setString(3, winner);
                p.executeUpdate();
            }
            return true;
        });
    }

    /** Every vote with its models, oldest first (the order the leaderboard replays them in). */
    public List<Vote> votes() {
        return tx("read votes", c -> {
            List<Vote> out = new ArrayList<>();
            try (Statement s = c.createStatement();
                 ResultSet r = s.executeQuery("SELECT v.battle_id, v.created_ms, b.left_model, b.right_model, v.winner"
                         + " FROM votes v JOIN battles b ON b.id = v.battle_id ORDER BY v.created_ms, v.battle_id")) {
                while (r.next()) {
                    out.add(new Vote(r.getString(1), r.getLong(2), r.getString(3), r.getString(4), r.getString(5)));
                }
            }
            return out;
        });
    }

    private static List<Generation> readGenerations(PreparedStatement p) throws SQLException {
        List<Generation> out = new ArrayList<>();
        try (ResultSet r = p.executeQuery()) {
            while (r.next()) {
                out.add(new Generation(r.getString(1), r.getLong(2), r.getString(3), r.getString(4), r.getString(5),
                        getLong(r, 6), getInt(r, 7), getDouble(r, 8), r.getString(9), getInt(r, 10), getInt(r, 11),
                        r.getInt(12), r.getString(13), r.getString(14), getDouble(r, 15), r.getString(16),
                        r.getString(17), List.of()));
            }
        }
        return out;
    }

    private static List<Generation> withImages(Connection c, List<Generation> gens) throws SQLException {
        List<Generation> out = new ArrayList<>();
        try (PreparedStatement p = c.prepareStatement(
                "SELECT id, idx, revised_prompt FROM images WHERE generation_id = ? ORDER BY idx")) {
            for (Generation g : gens) {
                p.setString(1, g.id());
                List<StoredImage> images = new ArrayList<>();
                try (ResultSet r = p.executeQuery()) {
                    while (r.next()) {
                        images.add(new StoredImage(r.getString(1), r.getInt(2), r.getString(3)));
                    }
                }
                out.add(new Generation(g.id(), g.createdMs(), g.model(), g.prompt(), g.negativePrompt(), g.seed(),
                        g.steps(), g.guidance(), g.scheduler(), g.width(), g.height(), g.n(), g.status(), g.error(),
                        g.seconds(), g.client(), g.battleId(), List.copyOf(images)));
            }
        }
        return out;
    }

    private static void setLong(PreparedStatement p, int i, Long v) throws SQLException {
        if (v == null) {
            p.setNull(i, Types.BIGINT);
        } else {
            p.setLong(i, v);
        }
    }

    private static void setInt(PreparedStatement p, int i, Integer v) throws SQLException {
        if (v == null) {
            p.setNull(i, Types.INTEGER);
        } else {
            p.setInt(i, v);
        }
    }

    private static void setDouble(PreparedStatement p, int i, Double v) throws SQLException {
        if (v == null) {
            p.setNull(i, Types.DOUBLE);
        } else {
            p.setDouble(i, v);
        }
    }

    private static Long getLong(ResultSet r, int i) throws SQLException {
        long v = r.getLong(i);
        return r.wasNull() ? null : v;
    }

    private static Integer getInt(ResultSet r, int i) throws SQLException {
        int v = r.getInt(i);
        return r.wasNull() ? null : v;
    }

    private static Double getDouble(ResultSet r, int i) throws SQLException {
        double v = r.getDouble(i);
        return r.wasNull() ? null : v;
    }

    @Override
    public synchronized void close() {
        try {
            connection.close();
        } catch (SQLException e) {
            throw new StoreException(url + ": close: " + e.getMessage(), e);
        }
    }
}
