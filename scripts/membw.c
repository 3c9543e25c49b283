// DRAM read bandwidth: gcc -O3 -march=native -fopenmp scripts/membw.c -o /tmp/membw && OMP_NUM_THREADS=2 /tmp/membw [MiB=1024] [reps=5]
//
// Sums a buffer (default 1 GiB) of floats with AVX-512 (or AVX2) loads, split over the OpenMP
// threads (static schedule, buffer first-touched by the same threads), and prints the GB/s
// (10^9 bytes/s) of each repeat and their median. One untimed warm-up pass.
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Sum of n floats (n a multiple of 64), four independent accumulators to hide load latency.
static float sum_chunk(const float *p, size_t n) {
#if defined(__AVX512F__)
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
        a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
#else
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 64) {
        a0 = _mm256_add_ps(a0, _mm256_add_ps(_mm256_load_ps(p + i), _mm256_load_ps(p + i + 8)));
        a1 = _mm256_add_ps(a1, _mm256_add_ps(_mm256_load_ps(p + i + 16), _mm256_load_ps(p + i + 24)));
        a2 = _mm256_add_ps(a2, _mm256_add_ps(_mm256_load_ps(p + i + 32), _mm256_load_ps(p + i + 40)));
        a3 = _mm256_add_ps(a3, _mm256_add_ps(_mm256_load_ps(p + i + 48), _mm256_load_ps(p + i + 56)));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    float t[8];
    _mm256_storeu_ps(t, s);
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
#endif
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1 || reps > 100 || mib < 1) {
        fprintf(stderr, "usage: membw [MiB>=1] [reps 1..100]\n");
        return 2;
    }
    size_t n = mib << 18;  // floats: MiB * 2^20 / 4
    float *buf = aligned_alloc(64, n * sizeof(float));
    if (!buf) {
        perror("aligned_alloc");
        return 1;
    }
    int nt = omp_get_max_threads();
    size_t per = (n / nt) & ~(size_t)63;  // each thread's share, whole 64-float steps
#pragma omp parallel num_threads(nt)
    {
        size_t b = (size_t)omp_get_thread_num() * per;
        for (size_t i = 0; i < per; i++) buf[b + i] = (float)((b + i) & 1023) * 1e-3f;
    }
    double gbs[100], sink = 0;
    for (int r = -1; r < reps; r++) {
        double t0 = now(), total = 0;
#pragma omp parallel num_threads(nt) reduction(+ : total)
        total += sum_chunk(buf + (size_t)omp_get_thread_num() * per, per);
        double dt = now() - t0;
        sink += total;
        if (r >= 0) {
            gbs[r] = (double)per * nt * sizeof(float) / dt / 1e9;
            printf("rep %d: %.2f GB/s\n", r + 1, gbs[r]);
        }
    }
    qsort(gbs, reps, sizeof(double), cmp);
    printf("threads %d, %zu MiB, %s loads: median %.2f GB/s (checksum %.3g)\n", nt, mib,
#if defined(__AVX512F__)
           "AVX-512",
#else
           "AVX2",
#endif
           gbs[reps / 2], sink);
    free(buf);
    return 0;
}
