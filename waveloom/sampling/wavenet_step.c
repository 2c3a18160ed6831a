/* WaveNet sampling kernel in C: the same computation as numba_kernels.py, for speed.
 *
 * Built at first use by waveloom/sampling/cbuild.py with the machine's C compiler
 * (-O3 -march=native), loaded with ctypes and driven on the arrays that
 * waveloom/sampling/fast.py packs (layouts: see numba_kernels.py, Net and State).
 *
 * Why it is faster than the numba kernel: every pointer is `restrict`, so the compiler needs
 * no runtime overlap checks; each product keeps a block of 4 vectors of outputs in registers
 * across ALL its input rows (register blocking) instead of loading and storing the outputs
 * once per few rows; the weights are stored in panels of that block's width, so a block reads
 * one contiguous stream; and at batch > 1 up to NS_MAX streams share every weight row loaded
 * (a quarter of the weight traffic of big layers at 4). The vector width follows the ISA it
 * is compiled for: 16 floats (one register) with AVX-512, else 8 (one AVX2 register, two
 * SSE/NEON registers).
 *
 * Arithmetic is float32 with sums only reordered (FMA contraction allowed, no fast-math
 * library or finite-math assumptions), tanh the same rational fit as tanh32, exp the same
 * Cody-Waite + Taylor scheme, and the draw the same float32 probabilities with a float64
 * running sum as torch.searchsorted(cumsum(probs)) on the CPU.
 *
 * The vector types, loads and products (gemv, gemv_streams) live in
 * waveloom/native/vector_gemv.h, shared with the SampleRNN kernel.
 */
#include "vector_gemv.h"

/* half_to_float, exported so the tests can check it on all 65536 halves (the vector ISAs
 * convert in hardware; this is the path of the others). */
float wl_half_to_float(uint16_t h) { return half_to_float(h); }

typedef struct {
    int64_t n_layers, kernel, res_ch, dil_ch, skip_ch, end_ch, n_params, n_res, wkind;
    int64_t in_rows; /* levels + 1: rows of one input table */
    int64_t ring_rows; /* rows of one stream's rings: sum of ring_len */
    int64_t loc_ch; /* > 0: `loc` holds local features [B, loc_ch] per step, projected here by
                     * loc_w; 0: `loc` holds the projected rows [B * n, 2D] per step */
    const float *in_table, *in_b;
    const void *conv_w, *res_w, *skip_w, *out1_w, *out2_w; /* float32, int8 or float16 */
    const float *conv_s, *res_s, *skip_s, *out1_s, *out2_s;
    const float *res_b, *skip_b, *out1_b, *out2_b;
    const int64_t *dil, *ring_off, *ring_len;
    const float *loc_w; /* [n, loc_ch, 2D] float32, panel layout (loc_ch > 0) */
} net_t;

/* Floats of `loc` per stream and step: the features (loc_ch) or every layer's rows. */
static inline int64_t loc_width(const net_t *net) {
    return net->loc_ch ? net->loc_ch : net->n_layers * 2 * net->dil_ch;
}

typedef struct {
    int64_t batch;
    float *ring;
    int32_t *codes;
    float *bias, *x, *h, *z2, *skip, *hid, *params, *probs, *acc;
    int64_t *nz;
} state_t;

typedef struct {
    int64_t kind, components, levels, tempered;
    float temperature, log_temperature, log_scale_min, pad_;
    const int32_t *input_map;
} head_t;

/* Panel width the Python side must pack for (depends on the vector ISA compiled for). */
int64_t wl_block(void) { return BLOCK; }

/* ------------------------------------------------------------------------------ one step */

/* Must match numba_kernels.TANH_* (fit_tanh_rational(8.0, 5, 3)). */
INLINE float tanh32(float x) {
    float t = x * 0.125f;
    t = t > 1.0f ? 1.0f : (t < -1.0f ? -1.0f : t);
    float s = t * t;
    float p = ((((0.19781614050263935f * s + -1.9485755717490787f) * s + 20.58529477250707f) * s
                + 97.61071388889724f) * s + 66.41975505804405f) * s + 7.999999304037167f;
    float q = ((61.929536555910005f * s + 98.29972689073193f) * s + 29.63577988816636f) * s + 1.0f;
    return t * p / q;
}

/* The input conv of streams b0:b1 at time t: x = b_in + sum_k table[k, code], the codes of
 * the last K inputs kept in each stream's ring (in_codes[b] is this step's). */
INLINE void input_conv(const net_t *restrict net, state_t *restrict st, int64_t b0, int64_t b1,
                       int64_t t, const int32_t *in_codes) {
    const int64_t K = net->kernel, C = net->res_ch;
    for (int64_t b = b0; b < b1; b++) {
        float *restrict x = st->x + b * C;
        int32_t *codes = st->codes + b * K;
        codes[t % K] = in_codes[b];
        for (int64_t i = 0; i < C; i++) x[i] = net->in_b[i];
        for (int64_t k = 0; k < K; k++) {
            int64_t slot = (t - (K - 1 - k)) % K; /* C's % keeps the sign: wrap negatives */
            const float *row = net->in_table + (k * net->in_rows + codes[slot < 0 ? slot + K : slot]) * C;
            for (int64_t i = 0; i < C; i++) x[i] += row[i];
        }
    }
}

/* Layer l of streams b0:b1 at time t, all but its skip product: the dilated conv (plus bias
 * and this step's local rows `loc`, NULL: none), the gate, and the residual update of x. The
 * gated output of stream b goes to z + (b - b0) * D, where layer_skip reads it. Up to NS_MAX
 * streams share every weight row while it is in L1. */
INLINE void layer_front(const net_t *restrict net, state_t *restrict st, int64_t b0, int64_t b1,
                        int64_t l, int64_t t, const float *loc, const int q8, float *z) {
    const int64_t n = net->n_layers, K = net->kernel, C = net->res_ch, D = net->dil_ch;
    const int64_t r = net->ring_len[l], d = net->dil[l], cur = t % r;
    const void *cw = mat(net->conv_w, q8, l, K * C * 2 * D);
    const void *rw = mat(net->res_w, q8, l, D * C);
    float *ys[NS_MAX];
    const float *xg[NS_MAX * 16];
    for (int64_t g0 = b0; g0 < b1; g0 += NS_MAX) {
        const int64_t ns = b1 - g0 < NS_MAX ? b1 - g0 : NS_MAX;
        for (int64_t q = 0; q < ns; q++) {
            const int64_t b = g0 + q;
            float *restrict x = st->x + b * C, *restrict h = st->h + b * 2 * D;
            float *lring = st->ring + (b * net->ring_rows + net->ring_off[l]) * C;
            memcpy(lring + cur * C, x, sizeof(float) * C);
            const float *bl = st->bias + (b * n + l) * 2 * D;
            if (loc && !net->loc_ch) {
                const float *ll = loc + (b * n + l) * 2 * D;
                for (int64_t o = 0; o < 2 * D; o++) h[o] = bl[o] + ll[o];
            } else {
                memcpy(h, bl, sizeof(float) * 2 * D);
            }
            if (loc && net->loc_ch) { /* a few features: their product costs less than rows */
                const float *f[1] = {loc + b * net->loc_ch};
                gemv(h, f, 1, net->loc_ch, net->loc_w + l * net->loc_ch * 2 * D, W_F32, NULL,
                     2 * D, NULL, 0);
            }
            for (int64_t k = 0; k < K; k++) {
                int64_t slot = cur - (K - 1 - k) * d;
                xg[q * K + k] = lring + (slot < 0 ? slot + r : slot) * C;
            }
            ys[q] = h;
        }
        gemv_streams(ys, xg, ns, K, C, cw, q8, net->conv_s + l * K * 2 * D, 2 * D);
        for (int64_t q = 0; q < ns; q++) {
            const float *restrict h = st->h + (g0 + q) * 2 * D;
            float *restrict z2 = z + (g0 + q - b0) * D;
            for (int64_t c = 0; c < D; c++) {
                float f = tanh32(h[c]);
                z2[c] = f + f * tanh32(h[D + c]);
            }
            xg[q] = z2;
        }
        if (l < net->n_res) {
            const float *rb = net->res_b + l * C;
            for (int64_t q = 0; q < ns; q++) {
                float *restrict x = st->x + (g0 + q) * C;
                for (int64_t i = 0; i < C; i++) x[i] += rb[i];
                ys[q] = x;
            }
            gemv_streams(ys, xg, ns, 1, D, rw, q8, net->res_s + l * C, C);
        }
    }
}

/* Layer l's skip product for streams b0:b1: skip[b] += z[b - b0] @ W_skip[l]. */
INLINE void layer_skip(const net_t *restrict net, state_t *restrict st, int64_t b0, int64_t b1,
                       int64_t l, const int q8, const float *z) {
    const int64_t D = net->dil_ch, S = net->skip_ch;
    const void *sw = mat(net->skip_w, q8, l, D * S);
    float *ys[NS_MAX];
    const float *xg[NS_MAX];
    for (int64_t g0 = b0; g0 < b1; g0 += NS_MAX) {
        const int64_t ns = b1 - g0 < NS_MAX ? b1 - g0 : NS_MAX;
        for (int64_t q = 0; q < ns; q++) {
            ys[q] = st->skip + (g0 + q) * S;
            xg[q] = z + (g0 + q - b0) * D;
        }
        gemv_streams(ys, xg, ns, 1, D, sw, q8, net->skip_s + l * S, S);
    }
}

/* The end of the net for streams b0:b1: skips -> ReLU -> 1x1 -> ReLU -> 1x1 = head params. */
INLINE void end_stack(const net_t *restrict net, state_t *restrict st, int64_t b0, int64_t b1,
                      const int q8) {
    const int64_t S = net->skip_ch, E = net->end_ch, P = net->n_params, NZ = S > E ? S : E;
    const float *xs[1];
    for (int64_t b = b0; b < b1; b++) {
        float *restrict skip = st->skip + b * S, *restrict hid = st->hid + b * E;
        float *restrict par = st->params + b * P;
        int64_t *nz = st->nz + b * NZ, m = 0;
        for (int64_t o = 0; o < S; o++) { /* only the non-zero rows are streamed */
            float v = skip[o] + net->skip_b[o];
            skip[o] = v > 0.0f ? v : 0.0f;
            if (v > 0.0f) nz[m++] = o;
        }
        memcpy(hid, net->out1_b, sizeof(float) * E);
        xs[0] = skip;
        gemv(hid, xs, 1, S, net->out1_w, q8, net->out1_s, E, nz, m);
        m = 0;
        for (int64_t o = 0; o < E; o++) {
            float v = hid[o];
            hid[o] = v > 0.0f ? v : 0.0f;
            if (v > 0.0f) nz[m++] = o;
        }
        memcpy(par, net->out2_b, sizeof(float) * P);
        xs[0] = hid;
        gemv(par, xs, 1, E, net->out2_w, q8, net->out2_s, P, nz, m);
    }
}

/* Feed in_codes[b] to streams b0:b1 at time t and compute their head parameters, layer-major:
 * each layer's weights serve every stream of the group while they are in L1. `loc` is this
 * step's local conditioning (NULL: none; net_t.loc_ch). The skip product follows the
 * residual one; they are independent, so the sums are those of any order. */
INLINE void forward(const net_t *restrict net, state_t *restrict st, int64_t b0, int64_t b1,
                    int64_t t, const int32_t *in_codes, const float *loc, const int q8) {
    input_conv(net, st, b0, b1, t, in_codes);
    memset(st->skip + b0 * net->skip_ch, 0, sizeof(float) * (b1 - b0) * net->skip_ch);
    float *z = st->z2 + b0 * net->dil_ch;
    for (int64_t l = 0; l < net->n_layers; l++) {
        layer_front(net, st, b0, b1, l, t, loc, q8, z);
        layer_skip(net, st, b0, b1, l, q8, z);
    }
    end_stack(net, st, b0, b1, q8);
}

static void forward_f32(const net_t *net, state_t *st, int64_t b0, int64_t b1, int64_t t,
                        const int32_t *in_codes, const float *loc) {
    forward(net, st, b0, b1, t, in_codes, loc, 0);
}

static void forward_q8(const net_t *net, state_t *st, int64_t b0, int64_t b1, int64_t t,
                       const int32_t *in_codes, const float *loc) {
    forward(net, st, b0, b1, t, in_codes, loc, W_Q8);
}

static void forward_f16(const net_t *net, state_t *st, int64_t b0, int64_t b1, int64_t t,
                        const int32_t *in_codes, const float *loc) {
    forward(net, st, b0, b1, t, in_codes, loc, W_F16);
}

/* ------------------------------------------------------------------------------ the draw */

/* exp(x) for x <= 0 as in numba_kernels._softmax_numerators. */
static inline float exp_neg(float x) {
    x = x < -87.0f ? -87.0f : x;
    float k = rintf(x * 1.4426950408889634f);
    float r = (x - k * 0.693145751953125f) - k * 1.4286068203094173e-06f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120
                    + r * (1.0f / 720))))));
    union { int32_t i; float f; } two = {.i = ((int32_t)k + 127) << 23};
    return p * two.f;
}

static int64_t to_level(const head_t *restrict hd, float xv) {
    xv = xv < -1.0f ? -1.0f : (xv > 1.0f ? 1.0f : xv);
    return (int64_t)rintf((xv + 1.0f) * 0.5f * (float)(hd->levels - 1));
}

static int64_t draw(const head_t *restrict hd, const float *restrict par, const float *u,
                    float *restrict e, int64_t P) {
    if (hd->kind == 2) { /* one Gaussian: u[0] is already the deviate Phi^-1(u) */
        float log_s = par[1] > hd->log_scale_min ? par[1] : hd->log_scale_min;
        return to_level(hd, par[0] + hd->temperature * expf(log_s) * u[0]);
    }
    int64_t n = hd->kind == 0 ? P : hd->components;
    float temp = (hd->kind == 0 || hd->tempered) ? hd->temperature : 1.0f;
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        e[i] = par[i] / temp;
        m = e[i] > m ? e[i] : m;
    }
    for (int64_t i = 0; i < n; i++) e[i] = exp_neg(e[i] - m);
    float total = 0.0f;
    for (int64_t i = 0; i < n; i++) total += e[i];
    int64_t idx = n - 1;
    double run = 0.0;
    for (int64_t i = 0; i < n; i++) {
        run += (double)(e[i] / total);
        if ((float)run > u[0]) {
            idx = i;
            break;
        }
    }
    if (hd->kind == 0) return idx;
    int64_t k = hd->components;
    float mu = par[k + idx];
    float log_s = par[2 * k + idx] > hd->log_scale_min ? par[2 * k + idx] : hd->log_scale_min;
    if (hd->tempered) log_s += hd->log_temperature;
    float v = u[1] < 1e-7f ? 1e-7f : (u[1] > 1.0f - 1e-7f ? 1.0f - 1e-7f : u[1]);
    return to_level(hd, mu + expf(log_s) * (logf(v) - log1pf(-v)));
}

/* ------------------------------------------------------------------------------ driver */

/* numba_kernels._run_group for streams b0:b1: `steps` samples from time t0; returns the
 * number of inputs fed. forced [B, steps], uniforms [steps, B, n_u], loc [steps, B, loc_width]
 * (NULL: none), codes_out [B, steps], params_out [steps, B, P] (NULL: not kept), in_codes a
 * [B] scratch row. */
int64_t wl_run(const net_t *net, const head_t *hd, state_t *st, int64_t b0, int64_t b1,
               int64_t t0, int64_t steps, int64_t feed_first, const int32_t *forced,
               const float *uniforms, int64_t n_u, const float *loc, int32_t *codes_out,
               float *params_out, int64_t final, int32_t *in_codes) {
    const int64_t B = st->batch, P = net->n_params, rows = loc_width(net);
    void (*fwd)(const net_t *, state_t *, int64_t, int64_t, int64_t, const int32_t *,
                const float *) = net->wkind == W_Q8 ? forward_q8
        : net->wkind == W_F16 ? forward_f16 : forward_f32;
    int64_t t = t0;
    for (int64_t s = 0; s < steps; s++) {
        const float *lstep = loc ? loc + s * B * rows : NULL;
        if (feed_first) {
            for (int64_t b = b0; b < b1; b++) in_codes[b] = forced[b * steps + s];
            fwd(net, st, b0, b1, t++, in_codes, lstep);
        }
        for (int64_t b = b0; b < b1; b++) {
            const float *par = st->params + b * P;
            int32_t c = (int32_t)draw(hd, par, uniforms + (s * B + b) * n_u, st->probs + b * P, P);
            codes_out[b * steps + s] = c;
            in_codes[b] = hd->input_map[c];
            if (params_out) memcpy(params_out + (s * B + b) * P, par, sizeof(float) * P);
        }
        if (!feed_first && !(final && s == steps - 1)) fwd(net, st, b0, b1, t++, in_codes, lstep);
    }
    return t - t0;
}

/* ------------------------------------------------------------------------------ two threads */

/* One group of streams on two cores (issue 21: one clip, two cores): wl_pipe_front on one
 * thread runs every layer's conv, gate and residual (the chain each sample must wait for),
 * wl_pipe_back on the other the skip products, the end stack and the draw. The back follows
 * the front layer by layer, so its skip products overlap the front's later layers and a
 * sample costs the front's chain plus the last skip, end stack and draw, not the whole net.
 * Together they compute exactly what wl_run does (same products, same order of sums).
 *
 * They talk through `sync`, int64 [32 + B] zeroed by the caller, each counter on its own
 * cache line: sync[0] layers published by the front (k * n + l + 1 for layer l of forward
 * k), sync[8] forwards finished by the back, sync[16] draws made, sync[32 + b] the input
 * code the last draw gave stream b. `z` [n, b1 - b0, D] holds every layer's gated outputs of
 * the forward in flight. A waiting thread spins briefly, then yields its core. */
#define SYNC_FRONT 0
#define SYNC_BACK 8
#define SYNC_DRAWS 16
#define SYNC_CODES 32

static inline int64_t sync_get(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void sync_set(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

#include <sched.h>
static void wait_for(const int64_t *p, int64_t v) {
    for (int64_t spins = 0; sync_get(p) < v; spins++) {
        if (spins < 2048) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            sched_yield(); /* the other thread may be waiting for this core */
        }
    }
}

/* Forward k's front half at time t: input codes from in_codes (the back's draw, or forced). */
static void pipe_front_one(const net_t *net, state_t *st, int64_t b0, int64_t b1, int64_t t,
                           int64_t k, const int32_t *in_codes, const float *loc, float *z,
                           int64_t *sync) {
    const int64_t n = net->n_layers, zl = (b1 - b0) * net->dil_ch;
    wait_for(sync + SYNC_BACK, k); /* the back has read forward k - 1's outputs from z */
    input_conv(net, st, b0, b1, t, in_codes);
    for (int64_t l = 0; l < n; l++) {
        switch (net->wkind) {
        case W_Q8: layer_front(net, st, b0, b1, l, t, loc, W_Q8, z + l * zl); break;
        case W_F16: layer_front(net, st, b0, b1, l, t, loc, W_F16, z + l * zl); break;
        default: layer_front(net, st, b0, b1, l, t, loc, W_F32, z + l * zl); break;
        }
        sync_set(sync + SYNC_FRONT, k * n + l + 1);
    }
}

/* Forward k's back half: each layer's skip product as soon as the front has published it. */
static void pipe_back_one(const net_t *net, state_t *st, int64_t b0, int64_t b1, int64_t k,
                          const float *z, int64_t *sync) {
    const int64_t n = net->n_layers, zl = (b1 - b0) * net->dil_ch;
    memset(st->skip + b0 * net->skip_ch, 0, sizeof(float) * (b1 - b0) * net->skip_ch);
    for (int64_t l = 0; l < n; l++) {
        wait_for(sync + SYNC_FRONT, k * n + l + 1);
        switch (net->wkind) {
        case W_Q8: layer_skip(net, st, b0, b1, l, W_Q8, z + l * zl); break;
        case W_F16: layer_skip(net, st, b0, b1, l, W_F16, z + l * zl); break;
        default: layer_skip(net, st, b0, b1, l, W_F32, z + l * zl); break;
        }
    }
    switch (net->wkind) {
    case W_Q8: end_stack(net, st, b0, b1, W_Q8); break;
    case W_F16: end_stack(net, st, b0, b1, W_F16); break;
    default: end_stack(net, st, b0, b1, W_F32); break;
    }
    sync_set(sync + SYNC_BACK, k + 1);
}

/* The front thread of wl_run (same arguments, plus z and sync); returns the inputs fed. */
int64_t wl_pipe_front(const net_t *net, state_t *st, int64_t b0, int64_t b1, int64_t t0,
                      int64_t steps, int64_t feed_first, const int32_t *forced,
                      const float *loc, int64_t final, int32_t *in_codes, float *z,
                      int64_t *sync) {
    const int64_t B = st->batch, rows = loc_width(net);
    int64_t t = t0, k = 0;
    for (int64_t s = 0; s < steps; s++) {
        const float *lstep = loc ? loc + s * B * rows : NULL;
        if (feed_first) {
            for (int64_t b = b0; b < b1; b++) in_codes[b] = forced[b * steps + s];
            pipe_front_one(net, st, b0, b1, t++, k++, in_codes, lstep, z, sync);
        } else if (!(final && s == steps - 1)) {
            wait_for(sync + SYNC_DRAWS, s + 1);
            for (int64_t b = b0; b < b1; b++) in_codes[b] = (int32_t)sync_get(sync + SYNC_CODES + b);
            pipe_front_one(net, st, b0, b1, t++, k++, in_codes, lstep, z, sync);
        }
    }
    return t - t0;
}

/* The back thread of wl_run: skips, end stack and the draws (codes_out, params_out). */
void wl_pipe_back(const net_t *net, const head_t *hd, state_t *st, int64_t b0, int64_t b1,
                  int64_t steps, int64_t feed_first, const float *uniforms, int64_t n_u,
                  int32_t *codes_out, float *params_out, int64_t final, const float *z,
                  int64_t *sync) {
    const int64_t B = st->batch, P = net->n_params;
    int64_t k = 0;
    for (int64_t s = 0; s < steps; s++) {
        if (feed_first) pipe_back_one(net, st, b0, b1, k++, z, sync);
        for (int64_t b = b0; b < b1; b++) {
            const float *par = st->params + b * P;
            int32_t c = (int32_t)draw(hd, par, uniforms + (s * B + b) * n_u, st->probs + b * P, P);
            codes_out[b * steps + s] = c;
            sync_set(sync + SYNC_CODES + b, hd->input_map[c]);
            if (params_out) memcpy(params_out + (s * B + b) * P, par, sizeof(float) * P);
        }
        sync_set(sync + SYNC_DRAWS, s + 1);
        if (!feed_first && !(final && s == steps - 1)) pipe_back_one(net, st, b0, b1, k++, z, sync);
    }
}
