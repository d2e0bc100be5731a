package koala4j.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;

import org.junit.jupiter.api.Test;

import koala4j.server.store.Store;

/** Elo by hand: equal ratings expect 0.5 each, so a win moves both by K/2 = 16 and a tie moves nothing. */
class LeaderboardTest {

    private static Store.Vote vote(String left, String right, String winner) {
        return new Store.Vote("b", 0, left, right, winner);
    }

    @Test
    void eloReplaysVotesInOrder() {
        List<Leaderboard.Row> rows = Leaderboard.compute(List.of(vote("a", "b", "left")), List.of("a", "b", "c"));
        assertEquals(new Leaderboard.Row("a", 1016, 1, 1, 0, 0), rows.get(0));
        assertEquals(new Leaderboard.Row("c", 1000, 0, 0, 0, 0), rows.get(1));
        assertEquals(new Leaderboard.Row("b", 984, 1, 0, 1, 0), rows.get(2));

        rows = Leaderboard.compute(List.of(vote("a", "b", "tie")), List.of("a", "b"));
        assertEquals(1000, rows.get(0).rating(), 1e-9);
        assertEquals(1, rows.get(0).ties());

        // second vote: b (984) beats a (1016); expected score of b = 1 / (1 + 10^(32/400)) = 0.45398...
        rows = Leaderboard.compute(List.of(vote("a", "b", "left"), vote("b", "a", "left")), List.of());
        double expectedB = 1 / (1 + Math.pow(10, 32.0 / 400));
        double b = 984 + 32 * (1 - expectedB);
        assertEquals(b, rows.stream().filter(r -> r.model().equals("b")).findFirst().orElseThrow().rating(), 1e-9);
        assertEquals(2000, rows.get(0).rating() + rows.get(1).rating(), 1e-9, "Elo is zero-sum");
    }
}
