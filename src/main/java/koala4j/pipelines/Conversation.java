package koala4j.pipelines;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

import koala4j.io.image.Image;

/**
 * A chat's history for {@link VisionChat}: system, user and assistant turns in order, each user turn with the images
 * and videos that came with it. Immutable: {@link #user} and {@link #assistant} return a longer conversation, so one
 * history can be shared or branched freely; it holds no model state (each {@link VisionChat#reply} renders and
 * encodes the whole history again, as LLaVA's serve/cli.py re-runs its whole prompt every turn).
 *
 * <p>In the prompt, a turn's visuals come before its text, in the order given: one image placeholder per picture and
 * one per sampled frame of a video (see {@link Video}).
 */
public record Conversation(List<Turn> turns) {

    /** Who speaks a turn. */
    public enum Role {
        SYSTEM, USER, ASSISTANT;

        /** The role name chat templates use ("system", "user", "assistant"). */
        public String templateName() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** Something to look at that comes with a user turn. */
    public sealed interface Visual permits Picture, Video {

        /** The frames this visual puts in the prompt, in order: one for a picture, every sampled frame of a video. */
        List<Image> frames();
    }

    /** One image; {@code source} names it in messages (a file name, "image_url 2", ...). */
    public record Picture(Image image, String source) implements Visual {
        public Picture {
            Objects.requireNonNull(image, "image");
        }

        @Override
        public List<Image> frames() {
            return List.of(image);
        }
    }

    /**
     * Frames sampled from a video ({@code indices} into the {@code totalFrames} of the file), in display order. A
     * LLaVA image model sees a video as its frames one after the other: each frame is one image placeholder of the
     * model's own single-image prompt format, encoded by the vision tower on its own, and the frames' features fill
     * those placeholders in frame order (Video-LLaVA-style prompting with an image model).
     */
    public record Video(List<Image> frames, List<Integer> indices, int totalFrames, String source) implements Visual {
        public Video {
            frames = List.copyOf(frames);
            indices = List.copyOf(indices);
            if (frames.isEmpty()) {
                throw new IllegalArgumentException(source + ": no frames");
            }
        }
    }

    /** One turn: its role, text and (user turns only) visuals. */
    public record Turn(Role role, String text, List<Visual> visuals) {
        public Turn {
            Objects.requireNonNull(role, "role");
            Objects.requireNonNull(text, "text");
            visuals = List.copyOf(visuals);
            if (role != Role.USER && !visuals.isEmpty()) {
                throw new IllegalArgumentException("a " + role.templateName() + " turn with images; only user turns"
                        + " carry images");
            }
        }

        /** Image placeholders this turn puts in the prompt (pictures plus video frames). */
        public int imageCount() {
            return visuals.stream().mapToInt(v -> v.frames().size()).sum();
        }
    }

    public Conversation {
        turns = List.copyOf(turns);
    }

    public static Conversation empty() {
        return new Conversation(List.of());
    }

    /** This conversation with a system prompt turn appended. */
    public Conversation system(String text) {
        return append(new Turn(Role.SYSTEM, text, List.of()));
    }

    public Conversation user(String text) {
        return user(text, List.of());
    }

    /** This conversation with a user turn (and the visuals that came with it) appended. */
    public Conversation user(String text, List<? extends Visual> visuals) {
        return append(new Turn(Role.USER, text, new ArrayList<>(visuals)));
    }

    /** This conversation with the assistant's answer appended (its decoded text, as cli.py stores it). */
    public Conversation assistant(String text) {
        return append(new Turn(Role.ASSISTANT, text, List.of()));
    }

    private Conversation append(Turn turn) {
        List<Turn> all = new ArrayList<>(turns);
        all.add(turn);
        return new Conversation(all);
    }

    /** Every image the prompt holds, in prompt order (video frames one by one). */
    public List<Image> images() {
        List<Image> out = new ArrayList<>();
        for (Turn t : turns) {
            for (Visual v : t.visuals()) {
                out.addAll(v.frames());
            }
        }
        return out;
    }

    public boolean isEmpty() {
        return turns.isEmpty();
    }
}
