package koala4j.models;

import static koala4j.testing.Close.resource;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import org.junit.jupiter.api.Test;

import koala4j.io.json.Json;
import koala4j.models.unet.UNet2DConditionModel;
import koala4j.models.unet.UNetConfig;

/**
 * Every real-size UNet config (SDXL, KOALA-700M/1B, SSD-1B, Vega, SD 1.5/2.1, BK-SDM base/small/tiny) builds from
 * its config.json alone and declares exactly the parameter count diffusers counts for it
 * (shared/configs/param_counts.json, counted by diffusers 0.36 on the meta device). Exact: a count is an integer.
 */
class RealConfigsTest {

    static Json bundled(String name) throws IOException {
        try (InputStream in = RealConfigsTest.class.getResourceAsStream("/koala4j/configs/" + name + ".unet.json")) {
            return Json.parse(new String(in.readAllBytes(), StandardCharsets.UTF_8), name + ".unet.json");
        }
    }

    @Test
    void parameterCountsEqualDiffusers() throws IOException {
        List<Json> counts = Json.parse("{\"all\": " + java.nio.file.Files.readString(
                resource("golden/unet_param_counts.json")) + "}", "param_counts.json").objects("all");
        assertEquals(10, counts.size());
        for (Json c : counts) {
            String name = c.string("name");
            UNet2DConditionModel unet = new UNet2DConditionModel(UNetConfig.from(bundled(name)));
            assertEquals(c.longValue("params"), unet.parameterCount(), name);
        }
    }
}
