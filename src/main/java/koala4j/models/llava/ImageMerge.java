package koala4j.models.llava;

import java.util.ArrayList;
import java.util.List;

/**
 * Where image rows go in a prompt: the spans of token positions that image feature rows replace, for the three
 * conventions LLaVA checkpoints use. Pure (ids in, spans out); errors name the counts that disagree.
 */
final class ImageMerge {

    /** Positions [start, start + length) of the ids become rows [rowFrom, rowTo) of image {@code image}. */
    record Span(int start, int length, int image, int rowFrom, int rowTo) {
    }

    private ImageMerge() {
    }

    static List<Span> spans(LlavaConfig c, LlavaModel.ImageTokens t, int[] ids, int[] rowsPerImage) {
        if (c.layout() == LlavaConfig.Layout.TRANSFORMERS) {
            return scatter(t.imageToken(), ids, rowsPerImage);
        }
        if (t.imageToken() == LlavaConfig.ORIGINAL_IMAGE_PLACEHOLDER || !c.useImPatchToken()) {
            return placeholders(t.imageToken(), ids, rowsPerImage);
        }
        return c.useImStartEnd() ? betweenStartEnd(t, ids, rowsPerImage) : patchRuns(t.imageToken(), ids, rowsPerImage);
    }

    /**
     * transformers: every position holding the image token takes the next feature row, images in order
     * (inputs_embeds.masked_scatter); the counts must agree exactly.
     */
    private static List<Span> scatter(int token, int[] ids, int[] rowsPerImage) {
        int total = 0;
        for (int r : rowsPerImage) {
            total += r;
        }
        int count = 0;
        for (int id : ids) {
            count += id == token ? 1 : 0;
        }
        if (count != total) {
            throw new IllegalArgumentException("Image features and image tokens do not match: " + count
                    + " image token(s) (id " + token + ") in the prompt, " + total + " feature rows from "
                    + rowsPerImage.length + " image(s)");
        }
        List<Span> out = new ArrayList<>();
        int image = 0;
        int row = 0;
        for (int i = 0; i < ids.length; ) {
            if (ids[i] != token) {
                i++;
                continue;
            }
            while (row == rowsPerImage[image]) {
                image++;
                row = 0;
            }
            int run = 0;
            while (i + run < ids.length && ids[i + run] == token && row + run < rowsPerImage[image]) {
                run++;
            }
            out.add(new Span(i, run, image, row, row + run));
            i += run;
            row += run;
        }
        return out;
    }

    /** LLaVA v0 with mm_use_im_start_end: the P positions after each &lt;im_start&gt; (then &lt;im_end&gt; must follow). */
    private static List<Span> betweenStartEnd(LlavaModel.ImageTokens t, int[] ids, int[] rowsPerImage) {
        List<Integer> starts = new ArrayList<>();
        int ends = 0;
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] == t.imStart()) {
                starts.add(i);
            }
            ends += ids[i] == t.imEnd() ? 1 : 0;
        }
        if (starts.size() != ends) {
            throw new IllegalArgumentException("The number of image start tokens (" + starts.size()
                    + ") and image end tokens (" + ends + ") should be the same.");
        }
        check(starts.size(), rowsPerImage.length, "<im_start> token");
        List<Span> out = new ArrayList<>();
        for (int img = 0; img < starts.size(); img++) {
            int s = starts.get(img);
            int p = rowsPerImage[img];
            if (s + p + 1 >= ids.length || ids[s + p + 1] != t.imEnd()) {
                throw new IllegalArgumentException("The image end token should follow the image start token: <im_start> at "
                        + s + " with " + p + " feature rows expects <im_end> (id " + t.imEnd() + ") at " + (s + p + 1));
            }
            out.add(new Span(s + 1, p, img, 0, p));
        }
        return out;
    }

    /** LLaVA v0 without start/end tokens: each image replaces the next run of exactly P consecutive patch tokens. */
    private static List<Span> patchRuns(int token, int[] ids, int[] rowsPerImage) {
        List<Span> out = new ArrayList<>();
        int i = 0;
        for (int img = 0; img < rowsPerImage.length; img++) {
            while (i < ids.length && ids[i] != token) {
                i++;
            }
            int run = 0;
            while (i + run < ids.length && ids[i + run] == token) {
                run++;
            }
            if (run != rowsPerImage[img]) {
                throw new IllegalArgumentException("The number of image patch tokens should be the same as the number"
                        + " of image patches: run of " + run + " <im_patch> tokens for image " + img + " with "
                        + rowsPerImage[img] + " patches");
            }
            out.add(new Span(i, run, img, 0, run));
            i += run;
        }
        for (; i < ids.length; i++) {
            if (ids[i] == token) {
                throw new IllegalArgumentException("<im_patch> tokens at " + i + " beyond the " + rowsPerImage.length
                        + " image(s) given");
            }
        }
        return out;
    }

    /** LLaVA 1.5 (prepare_inputs_labels_for_multimodal): each placeholder expands into one image's rows. */
    private static List<Span> placeholders(int token, int[] ids, int[] rowsPerImage) {
        List<Span> out = new ArrayList<>();
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] == token) {
                int img = out.size();
                if (img < rowsPerImage.length) {
                    out.add(new Span(i, 1, img, 0, rowsPerImage[img]));
                } else {
                    out.add(null);
                }
            }
        }
        check(out.size(), rowsPerImage.length, "image placeholder (id " + token + ")");
        return out;
    }

    private static void check(int found, int images, String what) {
        if (found != images) {
            throw new IllegalArgumentException("prompt has " + found + " " + what + "(s), " + images + " image(s) given");
        }
    }
}
