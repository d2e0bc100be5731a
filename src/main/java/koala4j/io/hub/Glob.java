package koala4j.io.hub;

import java.util.List;
import java.util.regex.Pattern;

/**
 * Allow-patterns as huggingface_hub's {@code filter_repo_objects} applies them (utils/_paths.py): Python
 * {@code fnmatch} on the repo-relative path, so {@code *} also crosses '/' ({@code "*.json"} matches
 * {@code "unet/config.json"}), {@code ?} is one character, {@code [abc]} and {@code [!abc]} are sets, and a pattern
 * that ends in '/' means everything under that folder. Matching is case-sensitive, as fnmatch is on POSIX.
 */
final class Glob {

    private final List<Pattern> patterns;

    private Glob(List<Pattern> patterns) {
        this.patterns = patterns;
    }

    /** Matches a path when any pattern does; {@code null} or an empty list matches every path. */
    static Glob anyOf(List<String> globs) {
        if (globs == null) {
            return new Glob(List.of());
        }
        return new Glob(globs.stream().map(Glob::compile).toList());
    }

    boolean matches(String path) {
        if (patterns.isEmpty()) {
            return true;
        }
        for (Pattern p : patterns) {
            if (p.matcher(path).matches()) {
                return true;
            }
        }
        return false;
    }

    /** Same translation as Python's {@code fnmatch.translate}, without its rarely used escapes. */
    static Pattern compile(String glob) {
        if (glob == null || glob.isEmpty()) {
            throw new IllegalArgumentException("allow-pattern '" + glob + "' is empty; expected a glob such as *.json");
        }
        String g = glob.endsWith("/") ? glob + "*" : glob;
        StringBuilder re = new StringBuilder();
        int i = 0;
        while (i < g.length()) {
            char c = g.charAt(i++);
            switch (c) {
                case '*' -> re.append(".*");
                case '?' -> re.append('.');
                case '[' -> {
                    int j = i;
                    if (j < g.length() && g.charAt(j) == '!') {
                        j++;
                    }
                    if (j < g.length() && g.charAt(j) == ']') {
                        j++;                       // a ']' right after '[' or '[!' is a member, not the end
                    }
                    while (j < g.length() && g.charAt(j) != ']') {
                        j++;
                    }
                    if (j >= g.length()) {
                        re.append("\\[");          // no closing bracket: fnmatch reads '[' literally
                    } else {
                        String set = g.substring(i, j);
                        i = j + 1;
                        StringBuilder cls = new StringBuilder("[");
                        int k = 0;
                        if (set.startsWith("!")) {
                            cls.append('^');
                            k = 1;
                        }
                        for (; k < set.length(); k++) {
                            char s = set.charAt(k);
                            if (s == '\\' || s == '[' || s == ']' || s == '&' || s == '^') {
                                cls.append('\\');
                            }
                            cls.append(s);
                        }
                        re.append(cls).append(']');
                    }
                }
                default -> re.append(Pattern.quote(String.valueOf(c)));
            }
        }
        return Pattern.compile(re.toString(), Pattern.DOTALL);
    }
}
