// Native reference point for koala4j's Q8_0 matrix-vector kernel (Q8Gemm): how much of this machine's read
// bandwidth a C kernel reaches with and without what Java lacks (a software prefetch, the AVX-512 VNNI int8 dot
// product), on the same layout (quants and F16 scales in two regions, rows of 4096, four quarter-strided rows per
// pass). A measuring tool for the README's "native reference point"; not part of koala4j, not built by Maven.
//   gcc -O3 -march=native -fopenmp q8-native-reference.c -o /tmp/q8ref -lm
//   OMP_NUM_THREADS=2 OMP_PROC_BIND=true /tmp/q8ref [MB, default 1024] [repetitions, default 5]
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>

#define COLS 4096
#define BLOCKS (COLS / 32)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int8_t *q;      // rows x COLS
static uint16_t *d;    // rows x BLOCKS, F16
static float x[COLS];
static int8_t qx[COLS];
static float dx[BLOCKS];
static float *y;
static long rows;

// plain read of the same bytes, `streams` interleaved sequential streams per thread
static double bare(int streams) {
    double sink = 0;
#pragma omp parallel reduction(+ : sink)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        long r0 = rows * t / n, r1 = rows * (t + 1) / n;
        const char *base = (const char *)q + r0 * COLS;
        long bytes = (r1 - r0) * COLS, part = bytes / streams / 64 * 64;
        __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                          _mm512_setzero_si512()};
        for (long o = 0; o < part; o += 64)
            for (int s = 0; s < streams; s++)
                acc[s] = _mm512_add_epi64(acc[s], _mm512_loadu_si512(base + s * part + o));
        const char *sb = (const char *)d + r0 * BLOCKS * 2;
        for (long o = 0; o + 64 <= (r1 - r0) * BLOCKS * 2; o += 64)
            acc[0] = _mm512_add_epi64(acc[0], _mm512_loadu_si512(sb + o));
        for (int s = 0; s < 4; s++) sink += _mm512_reduce_add_epi64(acc[s]);
    }
    return sink;
}

// koala4j's scheme: int8 widened to int32, converted to float, FMA with float x, per-block scale FMA; 4 rows per pass
static inline __attribute__((always_inline)) void float4(long r, long stride, int pf) {
    __m512 acc[4];
    for (int k = 0; k < 4; k++) acc[k] = _mm512_setzero_ps();
    for (int b = 0; b < BLOCKS; b++) {
        __m512 x0 = _mm512_loadu_ps(x + b * 32), x1 = _mm512_loadu_ps(x + b * 32 + 16);
        for (int k = 0; k < 4; k++) {
            const int8_t *p = q + (r + k * stride) * COLS + b * 32;
            if (pf && (b & 1) == 0) _mm_prefetch((const char *)p + pf, _MM_HINT_T0);
            __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
            __m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 16))));
            __m512 s = _mm512_fmadd_ps(w1, x1, _mm512_mul_ps(w0, x0));
            float sc = _cvtsh_ss(d[(r + k * stride) * BLOCKS + b]);
            acc[k] = _mm512_fmadd_ps(s, _mm512_set1_ps(sc), acc[k]);
        }
    }
    for (int k = 0; k < 4; k++) y[r + k * stride] = _mm512_reduce_add_ps(acc[k]);
}

// ggml's scheme: x quantised to int8 per block, |w| (u8) x sign-adjusted x (s8) by VPDPBUSD, two blocks per vector
static inline __attribute__((always_inline)) void vnni4(long r, long stride, int pf) {
    __m512 acc[4];
    for (int k = 0; k < 4; k++) acc[k] = _mm512_setzero_ps();
    for (int b = 0; b < BLOCKS; b += 2) {
        __m512i xv = _mm512_loadu_si512(qx + b * 32);
        __m512 dxv = _mm512_insertf32x8(_mm512_set1_ps(dx[b]), _mm256_set1_ps(dx[b + 1]), 1);
        for (int k = 0; k < 4; k++) {
            const int8_t *p = q + (r + k * stride) * COLS + b * 32;
            if (pf) _mm_prefetch((const char *)p + pf, _MM_HINT_T0);
            __m512i w = _mm512_loadu_si512(p);
            __m512i aw = _mm512_abs_epi8(w);
            __mmask64 neg = _mm512_movepi8_mask(w);
            __m512i sx = _mm512_mask_sub_epi8(xv, neg, _mm512_setzero_si512(), xv);
            __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), aw, sx);
            // lanes 0-7: block b, 8-15: block b+1
            const uint16_t *dp = d + (r + k * stride) * BLOCKS + b;
            __m512 dw = _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(dp[0])), _mm256_set1_ps(_cvtsh_ss(dp[1])), 1);
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, dxv), acc[k]);
        }
    }
    for (int k = 0; k < 4; k++) y[r + k * stride] = _mm512_reduce_add_ps(acc[k]);
}

static void run(int vnni, int pf) {
#pragma omp parallel
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        long r0 = rows * t / n, r1 = rows * (t + 1) / n;
        // chunks of 256 rows, four quarter-strided rows per pass as koala4j does
        for (long c = r0; c < r1; c += 256) {
            long len = (r1 - c < 256 ? r1 - c : 256) / 4 * 4, stride = len / 4;
            for (long i = 0; i < stride; i++) {
                if (vnni) {
                    if (pf) vnni4(c + i, stride, pf); else vnni4(c + i, stride, 0);
                } else {
                    if (pf) float4(c + i, stride, pf); else float4(c + i, stride, 0);
                }
            }
        }
    }
}

int main(int argc, char **argv) {
    long mb = argc > 1 ? atol(argv[1]) : 1024;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    rows = mb * 1000000L / (COLS + BLOCKS * 2) / 1024 * 1024;
    q = aligned_alloc(2 << 20, rows * COLS);
    d = aligned_alloc(64, rows * BLOCKS * 2);
    y = aligned_alloc(64, rows * 4);
    srand(1);
#pragma omp parallel for
    for (long i = 0; i < rows * COLS; i++) q[i] = (int8_t)(i * 2654435761u >> 24);
    for (long i = 0; i < rows * BLOCKS; i++) d[i] = _cvtss_sh(0.001f * (1 + i % 7), 0);
    for (int i = 0; i < COLS; i++) x[i] = (float)((i * 37 % 101) - 50) / 50;
    for (int b = 0; b < BLOCKS; b++) {
        float m = 0;
        for (int j = 0; j < 32; j++) m = m > __builtin_fabsf(x[b * 32 + j]) ? m : __builtin_fabsf(x[b * 32 + j]);
        dx[b] = m / 127;
        for (int j = 0; j < 32; j++) qx[b * 32 + j] = (int8_t)__builtin_roundf(x[b * 32 + j] / (dx[b] ? dx[b] : 1));
    }
    double bytes = (double)rows * (COLS + BLOCKS * 2);
    printf("%ld rows x %d, %.0f MB, %d threads\n", rows, COLS, bytes / 1e6, omp_get_max_threads());
    // the two kernels against a scalar reference of their own arithmetic, on the first 64 rows
    double errf = 0, errv = 0;
    for (int pass = 0; pass < 2; pass++) {
        run(pass, 0);
        for (long r = 0; r < 64; r++) {
            double ref = 0, mag = 0;
            for (int b = 0; b < BLOCKS; b++) {
                double sb = 0, sm = 0;
                for (int j = 0; j < 32; j++) {
                    double xv = pass ? qx[b * 32 + j] * dx[b] : x[b * 32 + j];
                    sb += q[r * COLS + b * 32 + j] * xv;
                    sm += fabs(q[r * COLS + b * 32 + j] * xv);
                }
                ref += sb * _cvtsh_ss(d[r * BLOCKS + b]);
                mag += sm * _cvtsh_ss(d[r * BLOCKS + b]);
            }
            double e = fabs(y[r] - ref) / mag;
            if (pass) errv = fmax(errv, e); else errf = fmax(errf, e);
        }
    }
    printf("check: float kernel within %.1e, int8 kernel within %.1e of sum |w x| (first 64 rows)\n", errf, errv);
    const char *names[] = {"bare 2 streams", "bare 4 streams", "float", "float pf256", "vnni", "vnni pf2048"};
    int n = sizeof names / sizeof *names;
    double best[8] = {0};
    for (int rep = 0; rep < reps; rep++) {
        for (int v = 0; v < n; v++) {
            double t0 = now();
            switch (v) {
                case 0: bare(2); break;
                case 1: bare(4); break;
                case 2: run(0, 0); break;
                case 3: run(0, 256); break;
                case 4: run(1, 0); break;
                case 5: run(1, 2048); break;
            }
            double gbs = bytes / (now() - t0) / 1e9;
            if (gbs > best[v]) best[v] = gbs;
        }
    }
    double bw = best[0] > best[1] ? best[0] : best[1];
    printf("best of %d (GB/s, %% of the faster bare read):", reps);
    for (int v = 0; v < n; v++) printf(" %s %.1f (%.0f%%);", names[v], best[v], 100 * best[v] / bw);
    printf("\n");
    return 0;
}
