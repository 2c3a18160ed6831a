/* Vector products shared by waveloom's C kernels (the WaveNet and SampleRNN samplers).
 *
 * Included, not linked: every kernel is built on its own by waveloom.native.build, which
 * puts this folder on the include path and hashes this file into the built library's key.
 * The products are the WaveNet kernel's (see waveloom/sampling/wavenet_step.c for why they
 * are shaped so): matrices in PANEL layout (waveloom.native.build.panels), float32, int8
 * with per-column scales, or float16, register-blocked, up to NS_MAX streams per weight row.
 */
#ifndef WAVELOOM_VECTOR_GEMV_H
#define WAVELOOM_VECTOR_GEMV_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__)
#define VEC 16 /* floats per vector: one AVX-512 register */
#define NS_MAX 4 /* streams sharing a weight row: 16 accumulators of 32 registers */
#else
#define VEC 8 /* two SSE/NEON or one AVX register; 8 accumulators + 4 rows fit 16 registers */
#define NS_MAX 2
#endif
#define BLOCK (4 * VEC)
typedef float vf __attribute__((vector_size(VEC * 4)));
typedef float vf_u __attribute__((vector_size(VEC * 4), aligned(4)));
typedef int32_t vi __attribute__((vector_size(VEC * 4)));

static inline vf load(const float *p) { return *(const vf_u *)p; }
static inline void store(float *p, vf v) { *(vf_u *)p = v; }

/* 16 int8 weights -> 16 floats. GCC's generic __builtin_convertvector from int8 goes byte by
 * byte, so the sign-extending loads are spelt out where the ISA has them. */
#if defined(__AVX512F__)
#include <immintrin.h>
static inline vf load_q(const int8_t *p) {
    return (vf)_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}
#elif defined(__AVX2__)
#include <immintrin.h>
static inline vf load_q(const int8_t *p) {
    __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
    __m256 hi =
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8))));
    vf r;
    memcpy(&r, &lo, sizeof lo);
    memcpy((char *)&r + sizeof lo, &hi, sizeof hi);
    return r;
}
#else
static inline vf load_q(const int8_t *p) {
    vi v;
    for (int j = 0; j < VEC; j++) v[j] = p[j];
    return __builtin_convertvector(v, vf);
}
#endif

/* IEEE half -> float (any half, subnormals included) for the ISAs without a converting load. */
static inline float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    union { uint32_t u; float f; } r;
    if (e == 0) { /* zero or subnormal: m * 2^-24 */
        r.f = (float)m * 5.9604644775390625e-08f;
        r.u |= sign;
    } else if (e == 31) {
        r.u = sign | 0x7f800000u | (m << 13);
    } else {
        r.u = sign | ((e + 112) << 23) | (m << 13);
    }
    return r.f;
}

/* VEC float16 weights -> floats: one converting load (vcvtph2ps) where F16C/AVX-512 has it.
 * Half the bytes of float32 with no scale: the small model's 0.9 MB of weights, which spilled
 * out of a 1 MB L2 beside its rings, fit in it (issue 21's loop speed). */
#if defined(__AVX512F__)
static inline vf load_h(const uint16_t *p) {
    return (vf)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
#elif defined(__AVX2__) && defined(__F16C__)
static inline vf load_h(const uint16_t *p) {
    return (vf)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
#else
static inline vf load_h(const uint16_t *p) {
    vf v;
    for (int j = 0; j < VEC; j++) v[j] = half_to_float(p[j]);
    return v;
}
#endif

/* ------------------------------------------------------------------------------ products */

#define INLINE static inline __attribute__((always_inline))

/* Weight kinds (net_t.wkind): float32, int8 with per-column scales, float16. */
#define W_F32 0
#define W_Q8 1
#define W_F16 2

/* One weight row segment of 4 vectors, widened to float32. The kind is a compile-time constant
 * at every call site (see gemv), so each kind's kernel is separate straight-line code. */
INLINE void row4(const void *w, int64_t off, int q8, vf *w0, vf *w1, vf *w2, vf *w3) {
    if (q8 == W_Q8) {
        const int8_t *p = (const int8_t *)w + off;
        *w0 = load_q(p), *w1 = load_q(p + VEC), *w2 = load_q(p + 2 * VEC), *w3 = load_q(p + 3 * VEC);
    } else if (q8 == W_F16) {
        const uint16_t *p = (const uint16_t *)w + off;
        *w0 = load_h(p), *w1 = load_h(p + VEC), *w2 = load_h(p + 2 * VEC), *w3 = load_h(p + 3 * VEC);
    } else {
        const float *p = (const float *)w + off;
        *w0 = load(p), *w1 = load(p + VEC), *w2 = load(p + 2 * VEC), *w3 = load(p + 3 * VEC);
    }
}

INLINE vf row1(const void *w, int64_t off, int q8) {
    if (q8 == W_F16) return load_h((const uint16_t *)w + off);
    return q8 == W_Q8 ? load_q((const int8_t *)w + off) : load((const float *)w + off);
}

INLINE float elem(const void *w, int64_t off, int q8) {
    if (q8 == W_F16) return half_to_float(((const uint16_t *)w)[off]);
    return q8 == W_Q8 ? (float)((const int8_t *)w)[off] : ((const float *)w)[off];
}

/* y[0:n_out] += sum over the `taps` input vectors xs[k] (each n_in long) of xs[k] @ W_k, W the
 * [taps * n_in, n_out] matrix at w in PANEL layout (below); int8 weights are scaled per column
 * by s. With `rows`, only x[rows[0:n_rows]] are used (the non-zero outputs of a ReLU; then
 * taps == 1).
 *
 * Panel layout: columns are cut into panels of BLOCK (the last one narrower), each stored
 * row-major on its own, so a panel is one contiguous stream: element (r, c) of panel p (width
 * pw) is at p * BLOCK * R + r * pw + c - p * BLOCK, R = taps * n_in. Python packs it
 * (fast._panels).
 *
 * Register blocking: a panel's 4 vectors of outputs stay in registers across every input row,
 * with two accumulator sets (even/odd rows) so 8 independent FMA chains cover FMA latency. */
INLINE void gemv_tail(float *restrict y, const float *const *xs, int64_t taps, int64_t n_in,
                      const void *restrict w, int q8, const float *restrict s, int64_t n_out,
                      int64_t o, const int64_t *restrict rows, int64_t n_rows);

INLINE void gemv(float *restrict y, const float *const *xs, int64_t taps, int64_t n_in,
                 const void *restrict w, int q8, const float *restrict s, int64_t n_out,
                 const int64_t *restrict rows, int64_t n_rows) {
    const int64_t m = rows ? n_rows : n_in, R = taps * n_in;
    int64_t o = 0;
    for (; o + BLOCK <= n_out; o += BLOCK) {
        vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, e0 = {0}, e1 = {0}, e2 = {0}, e3 = {0};
        vf w0, w1, w2, w3;
        for (int64_t k = 0; k < taps; k++) {
            const float *restrict x = xs[k];
            const int64_t base = o * R + k * n_in * BLOCK;
            int64_t j = 0;
            for (; j + 2 <= m; j += 2) {
                const int64_t i = rows ? rows[j] : j, i2 = rows ? rows[j + 1] : j + 1;
                const float xa = x[i], xb = x[i2];
                row4(w, base + i * BLOCK, q8, &w0, &w1, &w2, &w3);
                a0 += xa * w0, a1 += xa * w1, a2 += xa * w2, a3 += xa * w3;
                row4(w, base + i2 * BLOCK, q8, &w0, &w1, &w2, &w3);
                e0 += xb * w0, e1 += xb * w1, e2 += xb * w2, e3 += xb * w3;
            }
            if (j < m) {
                const int64_t i = rows ? rows[j] : j;
                const float xa = x[i];
                row4(w, base + i * BLOCK, q8, &w0, &w1, &w2, &w3);
                a0 += xa * w0, a1 += xa * w1, a2 += xa * w2, a3 += xa * w3;
            }
        }
        a0 += e0, a1 += e1, a2 += e2, a3 += e3;
        if (q8 == W_Q8) {
            a0 *= load(s + o), a1 *= load(s + o + VEC);
            a2 *= load(s + o + 2 * VEC), a3 *= load(s + o + 3 * VEC);
        }
        store(y + o, load(y + o) + a0);
        store(y + o + VEC, load(y + o + VEC) + a1);
        store(y + o + 2 * VEC, load(y + o + 2 * VEC) + a2);
        store(y + o + 3 * VEC, load(y + o + 3 * VEC) + a3);
    }
    if (o < n_out) gemv_tail(y, xs, taps, n_in, w, q8, s, n_out, o, rows, n_rows);
}

/* The narrow last panel of gemv (columns o:n_out, o = the last multiple of BLOCK). */
INLINE void gemv_tail(float *restrict y, const float *const *xs, int64_t taps, int64_t n_in,
                      const void *restrict w, int q8, const float *restrict s, int64_t n_out,
                      int64_t o, const int64_t *restrict rows, int64_t n_rows) {
    const int64_t m = rows ? n_rows : n_in, R = taps * n_in;
    const int64_t pw = n_out - o, panel = o * R;
    int64_t c = 0;
    for (; c + VEC <= pw; c += VEC) { /* one vector of columns, rows 4 at a time */
        vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int64_t k = 0; k < taps; k++) {
            const float *restrict x = xs[k];
            const int64_t base = panel + k * n_in * pw + c;
            int64_t j = 0;
            for (; j + 4 <= m; j += 4) {
                const int64_t i0 = rows ? rows[j] : j, i1 = rows ? rows[j + 1] : j + 1;
                const int64_t i2 = rows ? rows[j + 2] : j + 2, i3 = rows ? rows[j + 3] : j + 3;
                a0 += x[i0] * row1(w, base + i0 * pw, q8);
                a1 += x[i1] * row1(w, base + i1 * pw, q8);
                a2 += x[i2] * row1(w, base + i2 * pw, q8);
                a3 += x[i3] * row1(w, base + i3 * pw, q8);
            }
            for (; j < m; j++) {
                const int64_t i = rows ? rows[j] : j;
                a0 += x[i] * row1(w, base + i * pw, q8);
            }
        }
        vf a = (a0 + a1) + (a2 + a3);
        if (q8 == W_Q8) a *= load(s + o + c);
        store(y + o + c, load(y + o + c) + a);
    }
    for (; c < pw; c++) {
        float a = 0.0f;
        for (int64_t k = 0; k < taps; k++)
            for (int64_t j = 0; j < m; j++) {
                const int64_t i = rows ? rows[j] : j;
                a += xs[k][i] * elem(w, panel + (k * n_in + i) * pw + c, q8);
            }
        y[o + c] += q8 == W_Q8 ? a * s[o + c] : a;
    }
}

/* gemv for NS streams at once (same weights, NS a compile-time 2..4): ys[q] += sum_k
 * xs[q * taps + k] @ W_k. Each weight row is loaded once for all the streams, which share it
 * from registers: a quarter of the weight traffic at NS = 4, where big layers (the NSynth
 * decoder's 6 MB per conv) are bound by memory, and 4 * NS independent FMA chains. */
INLINE void gemv_ms(float *const *ys, const float *const *xs, const int NS, int64_t taps,
                    int64_t n_in, const void *restrict w, int q8, const float *restrict s,
                    int64_t n_out) {
    const int64_t R = taps * n_in;
    int64_t o = 0;
    for (; o + BLOCK <= n_out; o += BLOCK) {
        vf a[4][4];
        for (int q = 0; q < NS; q++)
            for (int v = 0; v < 4; v++) a[q][v] = (vf){0};
        vf w0, w1, w2, w3;
        for (int64_t k = 0; k < taps; k++) {
            const int64_t base = o * R + k * n_in * BLOCK;
            for (int64_t i = 0; i < n_in; i++) {
                row4(w, base + i * BLOCK, q8, &w0, &w1, &w2, &w3);
                for (int q = 0; q < NS; q++) {
                    const float xv = xs[q * taps + k][i];
                    a[q][0] += xv * w0, a[q][1] += xv * w1, a[q][2] += xv * w2;
                    a[q][3] += xv * w3;
                }
            }
        }
        for (int q = 0; q < NS; q++)
            for (int v = 0; v < 4; v++) {
                vf acc = a[q][v];
                if (q8 == W_Q8) acc *= load(s + o + v * VEC);
                store(ys[q] + o + v * VEC, load(ys[q] + o + v * VEC) + acc);
            }
    }
    if (o < n_out)
        for (int q = 0; q < NS; q++)
            gemv_tail(ys[q], xs + q * taps, taps, n_in, w, q8, s, n_out, o, NULL, 0);
}

/* gemv_ms for any 1 <= ns <= NS_MAX streams (the count made a constant for the compiler). */
INLINE void gemv_streams(float *const *ys, const float *const *xs, int64_t ns, int64_t taps,
                         int64_t n_in, const void *restrict w, int q8,
                         const float *restrict s, int64_t n_out) {
    switch (ns) {
    case 1: gemv(ys[0], xs, taps, n_in, w, q8, s, n_out, NULL, 0); break;
    case 2: gemv_ms(ys, xs, 2, taps, n_in, w, q8, s, n_out); break;
#if NS_MAX > 2
    case 3: gemv_ms(ys, xs, 3, taps, n_in, w, q8, s, n_out); break;
    case 4: gemv_ms(ys, xs, 4, taps, n_in, w, q8, s, n_out); break;
#endif
    default: break;
    }
}

INLINE const void *mat(const void *base, int q8, int64_t index, int64_t size) {
    const int64_t bytes = q8 == W_Q8 ? 1 : (q8 == W_F16 ? 2 : 4);
    return (const void *)((const char *)base + index * size * bytes);
}

#endif /* WAVELOOM_VECTOR_GEMV_H */
