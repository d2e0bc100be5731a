package koala4j.tokenizers;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Splits text around added tokens exactly as transformers' {@code Trie.split} (tokenization_utils.py) does:
 * the earliest match wins, and among matches that start at or before it the longest one (its "lookahead").
 * Immutable once built; {@link #split} is thread-safe.
 */
final class AddedTokenTrie {

    private static final class Node {
        final Map<Character, Node> children = new HashMap<>();
        boolean terminal;
    }

    private final Node root = new Node();
    private boolean empty = true;

    AddedTokenTrie(Iterable<String> words) {
        for (String word : words) {
            add(word);
        }
    }

    private void add(String word) {
        if (word.isEmpty()) {
            return;                                  // the reference ignores empty words
        }
        Node node = root;
        for (int i = 0; i < word.length(); i++) {
            node = node.children.computeIfAbsent(word.charAt(i), c -> new Node());
        }
        node.terminal = true;
        empty = false;
    }

    /**
     * transformers' PreTrainedTokenizer.tokenize with split_special_tokens=False: the text cut around the added
     * tokens, then each added token's lstrip / rstrip / single_word rule applied to its neighbours. Pieces that are
     * added tokens are their content; an empty piece means nothing is left there.
     */
    String[] splitAdded(String text, java.util.Map<String, AddedToken> addedByContent) {
        String[] parts = split(text).toArray(String[]::new);
        for (int i = 0; i < parts.length; i++) {
            AddedToken token = addedByContent.get(parts[i]);
            if (token == null) {
                continue;
            }
            String left = i > 0 ? parts[i - 1] : null;
            String right = i < parts.length - 1 ? parts[i + 1] : null;
            if (token.rstrip() && right != null && !right.isEmpty()) {
                parts[i + 1] = BasicTokenizer.pythonLstrip(right);   // the token eats the spaces on its right
            }
            if (token.lstrip() && left != null && !left.isEmpty()) {
                parts[i - 1] = BasicTokenizer.pythonRstrip(left);
            }
            if (token.singleWord() && left != null && !left.isEmpty() && left.charAt(left.length() - 1) != ' ') {
                parts[i - 1] += parts[i];
                parts[i] = "";
            } else if (token.singleWord() && right != null && !right.isEmpty() && right.charAt(0) != ' ') {
                parts[i] += right;
                parts[i + 1] = "";
            }
        }
        return parts;
    }

    /** The text cut at the boundaries of every added token found; concatenating the parts gives the text back. */
    List<String> split(String text) {
        if (empty) {
            return text.isEmpty() ? List.of() : List.of(text);
        }
        // Partial matches keyed by start offset, in increasing start order as the reference's OrderedDict.
        LinkedHashMap<Integer, Node> states = new LinkedHashMap<>();
        List<Integer> offsets = new ArrayList<>();
        offsets.add(0);
        int skip = 0;
        int length = text.length();
        for (int current = 0; current < length; current++) {
            if (skip != 0 && current < skip) {
                continue;                            // inside a match the lookahead already consumed
            }
            char currentChar = text.charAt(current);
            boolean reset = false;
            // Stale states are removed only after the loop, as in the reference: its lookahead still sees them.
            List<Integer> toRemove = new ArrayList<>();
            for (Map.Entry<Integer, Node> state : states.entrySet()) {
                int start = state.getKey();
                Node pointer = state.getValue();
                if (pointer.terminal) {
                    int end = current;
                    for (Map.Entry<Integer, Node> look : states.entrySet()) {
                        int lookStart = look.getKey();
                        Node lookPointer = look.getValue();
                        int lookaheadIndex;
                        if (lookStart > start) {
                            break;
                        } else if (lookStart < start) {
                            // an earlier partial match was already advanced past current
                            lookaheadIndex = current + 1;
                            end = current + 1;
                        } else {
                            lookaheadIndex = current;
                            end = current;
                        }
                        if (lookPointer.terminal) {
                            start = lookStart;
                            end = lookaheadIndex;
                            skip = lookaheadIndex;
                        }
                        while (lookaheadIndex < length) {
                            Node next = lookPointer.children.get(text.charAt(lookaheadIndex));
                            if (next == null) {
                                break;
                            }
                            lookPointer = next;
                            lookaheadIndex++;
                            if (lookPointer.terminal) {
                                start = lookStart;
                                end = lookaheadIndex;
                                skip = lookaheadIndex;
                            }
                        }
                    }
                    offsets.add(start);
                    offsets.add(end);
                    reset = true;
                    break;
                }
                Node next = pointer.children.get(currentChar);
                if (next != null) {
                    state.setValue(next);
                } else {
                    toRemove.add(start);             // this partial match stopped matching
                }
            }
            if (reset) {
                states.clear();
            } else {
                toRemove.forEach(states::remove);
            }
            if (current >= skip) {
                Node first = root.children.get(currentChar);
                if (first != null) {
                    states.put(current, first);
                }
            }
        }
        for (Map.Entry<Integer, Node> state : states.entrySet()) {
            if (state.getValue().terminal) {
                offsets.add(state.getKey());
                offsets.add(length);
                break;                               // the earliest start is the longest cut
            }
        }
        return cutText(text, offsets);
    }

    /** transformers' {@code Trie.cut_text}: skips zero-width and backwards cuts. */
    static List<String> cutText(String text, List<Integer> offsets) {
        List<Integer> all = new ArrayList<>(offsets);
        all.add(text.length());
        List<String> parts = new ArrayList<>();
        int start = 0;
        for (int end : all) {
            if (start >= end) {
                continue;
            }
            parts.add(text.substring(start, end));
            start = end;
        }
        return parts;
    }
}
