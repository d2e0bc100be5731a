package koala4j.server;

import java.util.List;

import koala4j.pipelines.Cancel;
import koala4j.pipelines.Progress;

/**
 * A text-to-image model the server offers: a local pipeline folder or a remote provider. {@link #generate} is
 * called from job workers, possibly concurrently; implementations are thread-safe.
 */
public interface ImageModel {

    /** The id requests name: a hub id ({@code etri-vilab/koala-700m}), a folder name or a provider's model. */
    String id();

    String displayName();

    /** {@code local} or the remote provider's name ({@code openai}). */
    String provider();

    /** Null when the model can be used, else why not (shown in the arena and answered to requests). */
    String unavailableReason();

    Limits limits();

    Output generate(Spec spec, Progress progress, Cancel cancel) throws Exception;

    /**
     * What a request may ask of this model: prompt length, images per request, sizes ({@code sizes} lists the only
     * accepted "WxH" values; empty means any multiple of 8 up to {@code maxSide}), whether the koala4j extensions
     * (negative_prompt, seed, steps, guidance, scheduler) apply, and the size used when none is given (null: the
     * model's own default).
     */
    record Limits(int maxPromptChars, int maxN, List<String> sizes, int maxSide, boolean extensions, String defaultSize) {
    }

    /** One request as the model sees it; null parameters take the model's defaults. */
    record Spec(String prompt, String negativePrompt, int n, Integer width, Integer height, long seed, Integer steps,
                Double guidance, String scheduler, String quality, String style, boolean tagModel) {
    }

    /** PNG files (with the parameters as text chunks for local models) and what was actually used. */
    record Output(List<byte[]> pngs, List<String> revisedPrompts, String negativePrompt, Long seed, Integer steps,
                  Double guidance, String scheduler, int width, int height) {
    }
}
