package koala4j.server;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import koala4j.server.store.Store;

/**
 * Elo ratings from every blind vote, replayed oldest first: everyone starts at 1000, K = 32, a tie scores 0.5 for
 * both, expected score 1 / (1 + 10^((Rb - Ra) / 400)) (the original Chatbot Arena's online Elo).
 */
final class Leaderboard {

    static final double INITIAL = 1000;
    static final double K = 32;

    record Row(String model, double rating, int votes, int wins, int losses, int ties) {
    }

    private static final class Tally {
        double rating = INITIAL;
        int votes;
        int wins;
        int losses;
        int ties;
    }

    private Leaderboard() {
    }

    /** Rows for {@code models} (every one, voted or not) and any other model in the votes, best first. */
    static List<Row> compute(List<Store.Vote> votes, List<String> models) {
        Map<String, Tally> t = new LinkedHashMap<>();
        for (String m : models) {
            t.put(m, new Tally());
        }
        for (Store.Vote v : votes) {
            Tally a = t.computeIfAbsent(v.leftModel(), k -> new Tally());
            Tally b = t.computeIfAbsent(v.rightModel(), k -> new Tally());
            double scoreA = switch (v.winner()) {
                case "left" -> 1.0;
                case "right" -> 0.0;
                default -> 0.5;
            };
            double expectedA = 1 / (1 + Math.pow(10, (b.rating - a.rating) / 400));
            a.rating += K * (scoreA - expectedA);
            b.rating += K * ((1 - scoreA) - (1 - expectedA));
            a.votes++;
            b.votes++;
            switch (v.winner()) {
                case "left" -> {
                    a.wins++;
                    b.losses++;
                }
                case "right" -> {
                    b.wins++;
                    a.losses++;
                }
                default -> {
                    a.ties++;
                    b.ties++;
                }
            }
        }
        List<Row> rows = new ArrayList<>();
        t.forEach((m, x) -> rows.add(new Row(m, x.rating, x.votes, x.wins, x.losses, x.ties)));
        rows.sort(Comparator.comparingDouble(Row::rating).reversed().thenComparing(Comparator.comparingInt(Row::votes).reversed())
                .thenComparing(Row::model));
        return rows;
    }
}
