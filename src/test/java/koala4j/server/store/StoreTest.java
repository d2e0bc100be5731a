package koala4j.server.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.sql.DriverManager;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The store on SQLite: versioned migrations, persistence across reopening, gallery search, battles and votes.
 * {@link PostgresStoreTest} runs the same tests on PostgreSQL.
 */
@Timeout(30)
class StoreTest {

    @TempDir
    Path dir;

    String url() {
        return "jdbc:sqlite:" + dir.resolve("test.db");
    }

    private static Store.NewGeneration gen(String id, long ms, String prompt, String battle) {
        return new Store.NewGeneration(id, ms, "koala", prompt, null, 1L, 2, 5.0, null, 64, 64, 1, null, battle);
    }

    private static void finish(Store s, String id) {
        s.finishGeneration(id, new Store.Finished(null, 1L, 2, 5.0, "EulerDiscreteScheduler", 64, 64, 0.5,
                List.of(new Store.StoredImage(id.replace('g', 'i'), 0, null))));
    }

    @Test
    void migratesStepByStepAndRecordsEachVersion() throws Exception {
        try (Store old = Store.open(url(), 1)) {
            assertEquals(1, old.schemaVersion());
            old.insertGeneration(gen("g1", 1, "kept across the upgrade", null));
        }
        try (Store s = Store.open(url())) {
            assertEquals(Migrations.latest(), s.schemaVersion());
            assertEquals("kept across the upgrade", s.generation("g1").orElseThrow().prompt());
        }
        try (var c = DriverManager.getConnection(url()); var st = c.createStatement();
             var r = st.executeQuery("SELECT version, description FROM koala4j_schema ORDER BY version")) {
            for (Migrations.Migration m : Migrations.ALL) {
                assertTrue(r.next());
                assertEquals(m.version(), r.getInt(1));
                assertEquals(m.description(), r.getString(2));
            }
            assertFalse(r.next());
        }
    }

    @Test
    void refusesADatabaseFromANewerVersion() throws Exception {
        Store.open(url()).close();
        try (var c = DriverManager.getConnection(url()); var st = c.createStatement()) {
            st.execute("INSERT INTO koala4j_schema (version, applied_ms, description) VALUES (99, 0, 'future')");
        }
        StoreException e = assertThrows(StoreException.class, () -> Store.open(url()));
        assertTrue(e.getMessage().contains("schema version 99") && e.getMessage().contains("knows up to "
                + Migrations.latest()), e.getMessage());
    }

    @Test
    void rejectsUnknownJdbcUrls() {
        StoreException e = assertThrows(StoreException.class, () -> Store.open("jdbc:mysql://localhost/x"));
        assertTrue(e.getMessage().contains("jdbc:sqlite:FILE or jdbc:postgresql://"), e.getMessage());
    }

    @Test
    void generationsPersistAndUnfinishedOnesBecomeInterrupted() {
        try (Store s = Store.open(url())) {
            s.insertGeneration(gen("g1", 10, "done one", null));
            finish(s, "g1");
            s.insertGeneration(gen("g2", 20, "left running", null));
            s.insertGeneration(gen("g3", 30, "failed one", null));
            s.endGeneration("g3", "failed", "boom");
        }
        try (Store s = Store.open(url())) {
            assertEquals(1, s.markInterrupted());
            var g1 = s.generation("g1").orElseThrow();
            assertEquals("done", g1.status());
            assertEquals("EulerDiscreteScheduler", g1.scheduler());
            assertEquals(0.5, g1.seconds());
            assertEquals(List.of(new Store.StoredImage("i1", 0, null)), g1.images());
            assertEquals("g1", s.imageGeneration("i1").orElseThrow());
            assertEquals("interrupted", s.generation("g2").orElseThrow().status());
            assertEquals("boom", s.generation("g3").orElseThrow().error());
            var counts = s.countByStatus();
            assertEquals(1, counts.get("done"));
            assertEquals(1, counts.get("interrupted"));
            assertEquals(1, counts.get("failed"));
            assertEquals(0, counts.get("queued"));
        }
    }

    @Test
    void gallerySearchTreatsWildcardsLiterallyAndIgnoresAsciiCase() {
        try (Store s = Store.open(url())) {
            String[] prompts = {"100% koala", "a_b koala", "KOALA in a tree", "코알라 한 마리", "panda"};
            for (int i = 0; i < prompts.length; i++) {
                s.insertGeneration(gen("g" + i, 100 + i, prompts[i], null));
                finish(s, "g" + i);
            }
            s.insertGeneration(gen("gq", 200, "queued koala", null));
            assertEquals(List.of("g2", "g1", "g0"), ids(s.gallery("koala", 10, null)));
            assertEquals(List.of("g0"), ids(s.gallery("%", 10, null)));
            assertEquals(List.of("g1"), ids(s.gallery("_", 10, null)));
            assertEquals(List.of("g3"), ids(s.gallery("코알라", 10, null)));
            assertEquals(List.of("g4", "g3"), ids(s.gallery("", 2, null)));
            assertEquals(List.of("g1", "g0"), ids(s.gallery(null, 10, 102L)));
        }
    }

    private static List<String> ids(List<Store.Generation> gens) {
        return gens.stream().map(Store.Generation::id).toList();
    }

    @Test
    void battlesAreVotedOnceAndHiddenFromTheGalleryUntilThen() {
        try (Store s = Store.open(url())) {
            s.insertGeneration(gen("gl", 1, "battle prompt", "b1"));
            s.insertGeneration(gen("gr", 2, "battle prompt", "b1"));
            finish(s, "gl");
            finish(s, "gr");
            s.insertBattle(new Store.Battle("b1", 3, "battle prompt", "koala", "sd15", "gl", "gr", null));
            assertEquals(List.of(), s.gallery("battle", 10, null));
            assertEquals(null, s.battle("b1").orElseThrow().winner());
            assertTrue(s.vote("b1", "right", 4));
            assertFalse(s.vote("b1", "left", 5), "a battle is voted once");
            assertEquals("right", s.battle("b1").orElseThrow().winner());
            assertEquals(List.of(new Store.Vote("b1", 4, "koala", "sd15", "right")), s.votes());
            assertEquals(2, s.gallery("battle", 10, null).size());
            assertThrows(IllegalArgumentException.class, () -> s.vote("b1", "both", 6));
        }
    }
}
