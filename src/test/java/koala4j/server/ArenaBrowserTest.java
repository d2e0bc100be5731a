package koala4j.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The arena page in Debian's headless Chromium driven by chromedriver (Selenium), both installed by {@code .ci/run}:
 * type a prompt, wait for the images of two models side by side with their seconds and parameters, check that an
 * HTML prompt stays text, vote in blind mode, see the names revealed and the leaderboard change. Saves the
 * screenshot the README shows (docs/arena.png).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ArenaBrowserTest {

    static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
    static final String XSS = "<img src=x onerror=\"document.title='pwned'\"><script>window.pwned=1</script> koala";

    @TempDir
    static Path data;
    static KoalaServer server;
    static WebDriver driver;
    static WebDriverWait wait;

    @BeforeAll
    static void start() throws Exception {
        assertTrue(Files.isExecutable(CHROMIUM) && Files.isExecutable(CHROMEDRIVER),
                "the browser test needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
                        + " (.ci/run installs them)");
        server = KoalaServer.start(TestServers.builder(data, "sd15", "koala").build());
        ChromeOptions options = new ChromeOptions();
        options.setBinary(CHROMIUM.toFile());
        options.addArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--lang=ko");
        ChromeDriverService service = new ChromeDriverService.Builder()
                .usingDriverExecutable(CHROMEDRIVER.toFile()).usingAnyFreePort().build();
        driver = new ChromeDriver(service, options);
        wait = new WebDriverWait(driver, Duration.ofSeconds(60));
    }

    @AfterAll
    static void stop() {
        if (driver != null) {
            driver.quit();
        }
        if (server != null) {
            server.close();
        }
    }

    private static Object js(String script, Object... args) {
        return ((JavascriptExecutor) driver).executeScript(script, args);
    }

    private static void type(String css, String text) {
        WebElement e = driver.findElement(By.cssSelector(css));
        e.clear();
        e.sendKeys(text);
    }

    /** Waits until {@code count} result cards have a loaded image and their seconds. */
    private static void waitForImages(String cards, int count) {
        wait.until(d -> {
            List<WebElement> done = d.findElements(By.cssSelector(cards)).stream()
                    .filter(c -> !c.findElement(By.cssSelector(".seconds")).getText().isEmpty())
                    .filter(c -> Boolean.TRUE.equals(js("return arguments[0].complete && arguments[0].naturalWidth > 0",
                            c.findElement(By.tagName("img")))))
                    .toList();
            return done.size() == count;
        });
    }

    @Test
    void compareThenVoteBlindAndSeeTheLeaderboardChange() throws Exception {
        driver.get("http://127.0.0.1:" + server.port() + "/");
        wait.until(d -> "true".equals(d.findElement(By.tagName("body")).getDomAttribute("data-ready")));
        List<WebElement> checked = driver.findElements(By.cssSelector("#models input:checked"));
        assertEquals(Set.of("sd15", "koala"), Set.copyOf(checked.stream().map(e -> e.getDomAttribute("value")).toList()));
        assertTrue(driver.findElement(By.id("models")).getText().contains("OPENAI_API_KEY is not set"));

        type("#prompt", "책을 읽는 코알라, a koala reading a book");
        driver.findElement(By.cssSelector("#parameters summary")).click();
        type("#seed", "42");
        type("#steps", "2");
        type("#size", "64x64");
        driver.findElement(By.id("generate")).click();
        waitForImages("#results .card", 2);
        // again, now that both models are loaded: the seconds shown are then the generation alone
        driver.findElement(By.id("generate")).click();
        wait.until(d -> d.findElements(By.cssSelector("#results .card .seconds")).stream().allMatch(e -> e.getText().isEmpty()));
        waitForImages("#results .card", 2);
        for (WebElement card : driver.findElements(By.cssSelector("#results .card"))) {
            String params = card.findElement(By.cssSelector(".params")).getText();
            assertTrue(params.contains("seed 42") && params.contains("2 steps") && params.contains("64x64"), params);
            assertTrue(card.findElement(By.cssSelector(".seconds")).getText().matches("\\d+\\.\\d\\d s"));
        }
        Path shot = ((TakesScreenshot) driver).getScreenshotAs(OutputType.FILE).toPath();
        // target/arena.png on every run; the README's docs/arena.png is refreshed only when asked
        // (-Dkoala4j.screenshot=docs/arena.png), so a test run leaves the work tree clean
        Path screenshot = Path.of(System.getProperty("koala4j.screenshot", "target/arena.png"));
        Files.createDirectories(screenshot.toAbsolutePath().getParent());
        Files.copy(shot, screenshot, StandardCopyOption.REPLACE_EXISTING);

        // a prompt that is HTML stays text: in the results, in the gallery
        type("#prompt", XSS);
        driver.findElement(By.id("generate")).click();
        waitForImages("#results .card", 2);
        driver.findElement(By.cssSelector(".tab[data-tab=gallery]")).click();
        type("#gallery-q", "onerror");
        wait.until(d -> d.findElements(By.cssSelector("#gallery .card .prompt")).size() == 2);
        for (WebElement p : driver.findElements(By.cssSelector("#gallery .card .prompt"))) {
            assertEquals(XSS, p.getText());
        }
        assertNotEquals("pwned", driver.getTitle());
        assertNull(js("return window.pwned"));
        assertEquals(0L, js("return document.querySelectorAll('img[src=\"x\"], #gallery script').length"));

        // blind mode: two anonymous models, a vote, the names, the leaderboard
        driver.findElement(By.cssSelector(".tab[data-tab=leaderboard]")).click();
        wait.until(d -> d.findElement(By.id("leaderboard-votes")).getText().startsWith("0 votes"));
        driver.findElement(By.cssSelector(".tab[data-tab=blind]")).click();
        type("#battle-prompt", "a koala astronaut");
        driver.findElement(By.id("battle-start")).click();
        wait.until(d -> d.findElement(By.id("vote-left")).isEnabled());
        assertEquals("Model A", driver.findElement(By.cssSelector("#battle-left .name")).getText());
        driver.findElement(By.id("vote-left")).click();
        wait.until(d -> !d.findElement(By.cssSelector("#battle-left .name")).getText().equals("Model A"));
        String winner = driver.findElement(By.cssSelector("#battle-left .name")).getText();
        assertTrue(Set.of("tiny sd15", "tiny koala").contains(winner), winner);
        driver.findElement(By.cssSelector(".tab[data-tab=leaderboard]")).click();
        wait.until(d -> d.findElement(By.id("leaderboard-votes")).getText().startsWith("1 votes"));
        WebElement top = driver.findElement(By.cssSelector("#leaderboard tbody tr"));
        assertTrue(top.getText().contains(winner), top.getText());
        assertEquals("1016.0", top.findElement(By.cssSelector(".rating")).getText());
        assertEquals("1", top.findElement(By.cssSelector(".votes")).getText());
        assertTrue(new File(System.getProperty("koala4j.screenshot", "target/arena.png")).length() > 10_000);
    }
}
