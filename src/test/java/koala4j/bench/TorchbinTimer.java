package koala4j.bench;

import java.nio.file.Path;

import koala4j.io.torchbin.TorchCheckpoint;

/**
 * Quick timer (no JMH) for opening torch.save checkpoints: {@link TorchCheckpoint#open} (zip directory, restricted
 * unpickling, view checks) plus fetching every tensor, for each file or folder given; one cold run, then best of 5.
 * A test file like the README's (336 BF16 tensors, 0.96 GB) comes from:
 *
 * <pre>
 * python3 -c "import torch; g=torch.Generator().manual_seed(0); torch.save({f'block.{i}.{n}.weight':
 *   torch.randn(s, generator=g).bfloat16() for i in range(48) for n, s in [('q',(1024,1024)),('k',(1024,1024)),
 *   ('v',(1024,1024)),('o',(1024,1024)),('wi',(2816,1024)),('wo',(1024,2816)),('ln',(1024,))]}, '/tmp/bench.bin')"
 * java -cp target/classes:target/test-classes:$(deps) koala4j.bench.TorchbinTimer /tmp/bench.bin
 * </pre>
 */
public final class TorchbinTimer {

    private TorchbinTimer() {
    }

    public static void main(String[] args) {
        for (String arg : args) {
            Path path = Path.of(arg);
            double best = Double.MAX_VALUE;
            for (int run = 0; run < 6; run++) {
                long start = System.nanoTime();
                try (TorchCheckpoint c = TorchCheckpoint.open(path)) {
                    long bytes = 0;
                    for (String name : c.names()) {
                        bytes += c.require(name).data().byteSize();
                    }
                    double ms = (System.nanoTime() - start) / 1e6;
                    if (run == 0) {
                        System.out.printf("%s: %d tensors, %.2f GB; cold open %.1f ms%n", path, c.names().size(), bytes / 1e9, ms);
                    } else {
                        best = Math.min(best, ms);
                    }
                }
            }
            System.out.printf("%s: warm open, best of 5: %.1f ms%n", path, best);
        }
    }
}
