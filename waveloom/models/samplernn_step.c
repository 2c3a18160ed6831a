/* SampleRNN's sampler in C: the numpy stepper's arithmetic (waveloom/models/samplernn_stepper.py)
 * in one call per chunk of samples.
 *
 * Why: per sample the numpy stepper spends ~60 us, mostly in the ~20 numpy calls of the MLP
 * and the draw (1-3 us each), where the arithmetic (two 256 x 256 products, a frame tier's
 * GRU every 4 samples) takes a fraction of that. Here the whole loop -- every tier whose frame
 * starts, the MLP, the softmax and the inverse-CDF draw -- runs without leaving C, on the
 * register-blocked products of vector_gemv.h (weights in panel layout, up to NS_MAX streams
 * sharing each weight row).
 *
 * Built at first use by waveloom/native/build.py; driven by waveloom/models/samplernn_kernel.py,
 * which packs the arrays. Arithmetic is float32 with sums reordered (FMA contraction allowed),
 * sigmoid as 0.5 (tanh(x / 2) + 1) like the numpy stepper, libm's tanhf and expf: the logits
 * agree with the numpy and torch steppers to float rounding (tests/test_samplernn.py).
 */
#include "vector_gemv.h"

typedef struct {
    int64_t frame;   /* samples per frame: this tier's input features */
    int64_t loc_in;  /* local features per frame (frame x clock channels); 0: none */
    int64_t hid;     /* H: the input projection's and the RNN's width */
    int64_t layers, lstm, ratio, out_dim; /* out: [ratio, out_dim] per step */
    const float *w_in, *b_in, *w_loc;     /* [frame, H], [H], [loc_in, H] (panels) */
    const float *w_ih, *w_hh, *b_ih, *b_hh; /* [layers, H, G H] (panels), [layers, G H] */
    const float *w_up, *b_up;             /* [H, ratio out_dim] (panels), [ratio out_dim] */
    const float *g_bias;                  /* [n, H] (the global conditioning) or NULL */
    float *h, *c;                         /* state [layers, n, H]; c: LSTM cells or NULL */
    float *vec;                           /* [n, ratio out_dim]: the last step's output */
} tier_t;

typedef struct {
    int64_t n, n_tiers, ctx, levels, inputs, mlp, n_hidden, loc_ch, local_len, stride;
    float scale, temperature;
    const int64_t *sizes;                 /* [n_tiers] frame sizes, top first */
    tier_t *tiers;
    const float *table;                   /* [levels inputs, mlp] row-major: embedding x input */
    const float *mlp_bias;                /* [n, mlp] */
    const float *w_mloc;                  /* [loc_ch, mlp] (panels) or NULL */
    const float *w_hid, *b_hid;           /* [n_hidden, mlp, mlp] (panels), [n_hidden, mlp] */
    const float *w_out, *b_out;           /* [mlp, levels] (panels), [levels] */
    const float *local;                   /* [n, local_len, loc_ch] or NULL */
    float *x, *gi, *gh, *frame, *a, *b, *logits, *e; /* scratch, see samplernn_kernel.py */
} srnn_t;

/* Panel width the Python side must pack for. */
int64_t srnn_block(void) { return BLOCK; }

/* y[b] += x[b] @ W for the n streams (rows ld_y and ld_x apart), NS_MAX sharing each row. */
static void products(float *y, int64_t ld_y, const float *x, int64_t ld_x, int64_t n,
                     int64_t n_in, const float *w, int64_t n_out) {
    float *ys[NS_MAX];
    const float *xs[NS_MAX];
    for (int64_t g0 = 0; g0 < n; g0 += NS_MAX) {
        const int64_t ns = n - g0 < NS_MAX ? n - g0 : NS_MAX;
        for (int64_t q = 0; q < ns; q++) ys[q] = y + (g0 + q) * ld_y, xs[q] = x + (g0 + q) * ld_x;
        gemv_streams(ys, xs, ns, 1, n_in, w, W_F32, NULL, n_out);
    }
}

/* y[b] = bias (the same row for every stream). */
static void fill(float *y, int64_t n, const float *bias, int64_t width) {
    for (int64_t b = 0; b < n; b++) memcpy(y + b * width, bias, sizeof(float) * width);
}

static inline float sigmoid(float x) { return 0.5f * (tanhf(0.5f * x) + 1.0f); }

/* One GRU or LSTM layer for every stream: x [n, H] in, the new h out (into x and the state). */
static void rnn_layer(const srnn_t *s, const tier_t *tr, int64_t i) {
    const int64_t n = s->n, H = tr->hid, G = (tr->lstm ? 4 : 3) * H;
    float *h = tr->h + i * n * H, *gi = s->gi, *gh = s->gh, *x = s->x;
    fill(gi, n, tr->b_ih + i * G, G);
    products(gi, G, x, H, n, H, tr->w_ih + i * H * G, G);
    fill(gh, n, tr->b_hh + i * G, G);
    products(gh, G, h, H, n, H, tr->w_hh + i * H * G, G);
    for (int64_t b = 0; b < n; b++) {
        const float *p = gi + b * G, *q = gh + b * G;
        float *hb = h + b * H, *xb = x + b * H;
        if (tr->lstm) { /* torch's gate order: input, forget, cell, output */
            float *cb = tr->c + (i * n + b) * H;
            for (int64_t j = 0; j < H; j++) {
                const float c = sigmoid(p[H + j] + q[H + j]) * cb[j]
                    + sigmoid(p[j] + q[j]) * tanhf(p[2 * H + j] + q[2 * H + j]);
                cb[j] = c;
                xb[j] = hb[j] = sigmoid(p[3 * H + j] + q[3 * H + j]) * tanhf(c);
            }
        } else { /* torch's GRU: reset, update, candidate (reset applied to W_hn h + b_hn) */
            for (int64_t j = 0; j < H; j++) {
                const float r = sigmoid(p[j] + q[j]), z = sigmoid(p[H + j] + q[H + j]);
                const float cand = tanhf(p[2 * H + j] + r * q[2 * H + j]);
                xb[j] = hb[j] = (1.0f - z) * cand + z * hb[j];
            }
        }
    }
}

/* Tier k's step at time t (a frame of it starts): input projection of the last frame's
 * values (+ the tier above's output for this frame, local features, global bias), the RNN,
 * and the upsampling to [ratio, out_dim] per stream. */
static void tier_step(const srnn_t *s, int64_t k, int64_t t, const int64_t *buf) {
    const tier_t *tr = &s->tiers[k];
    const int64_t n = s->n, H = tr->hid, F = tr->frame, U = tr->ratio * tr->out_dim;
    for (int64_t b = 0; b < n; b++)
        for (int64_t j = 0; j < F; j++)
            s->frame[b * F + j] = (float)buf[b * s->stride + s->ctx + t - F + j] * s->scale - 1.0f;
    fill(s->x, n, tr->b_in, H);
    products(s->x, H, s->frame, F, n, F, tr->w_in, H);
    if (k > 0) {
        const tier_t *up = &s->tiers[k - 1];
        const int64_t row = (t % s->sizes[k - 1]) / F, width = up->ratio * up->out_dim;
        for (int64_t b = 0; b < n; b++)
            for (int64_t j = 0; j < H; j++) s->x[b * H + j] += up->vec[b * width + row * H + j];
    }
    if (tr->loc_in)
        products(s->x, H, s->local + t * s->loc_ch, s->local_len * s->loc_ch, n, tr->loc_in,
                 tr->w_loc, H);
    if (tr->g_bias)
        for (int64_t i = 0; i < n * H; i++) s->x[i] += tr->g_bias[i];
    for (int64_t i = 0; i < tr->layers; i++) rnn_layer(s, tr, i);
    fill(tr->vec, n, tr->b_up, U);
    products(tr->vec, U, s->x, H, n, H, tr->w_up, U);
}

/* The MLP at time t: embedded last `inputs` codes + bias + the lowest tier's row -> ReLU
 * layers -> logits [n, levels] (in s->logits). */
static void mlp_step(const srnn_t *s, int64_t t, const int64_t *buf) {
    const tier_t *lt = &s->tiers[s->n_tiers - 1];
    const int64_t n = s->n, M = s->mlp, last = s->sizes[s->n_tiers - 1], U = lt->ratio * M;
    if (t % last == 0 && s->w_mloc) /* the pitch clock's term, once per lowest frame */
        for (int64_t r = 0; r < last; r++)
            products(lt->vec + r * M, U, s->local + (t + r) * s->loc_ch,
                     s->local_len * s->loc_ch, n, s->loc_ch, s->w_mloc, M);
    float *a = s->a, *o = s->b;
    for (int64_t b = 0; b < n; b++) {
        float *ab = a + b * M;
        memset(ab, 0, sizeof(float) * M);
        for (int64_t j = 0; j < s->inputs; j++) {
            const int64_t code = buf[b * s->stride + s->ctx + t - last + j];
            const float *row = s->table + (code * s->inputs + j) * M;
            for (int64_t i = 0; i < M; i++) ab[i] += row[i];
        }
        const float *bias = s->mlp_bias + b * M, *v = lt->vec + b * U + (t % last) * M;
        for (int64_t i = 0; i < M; i++) {
            const float y = ab[i] + bias[i] + v[i];
            ab[i] = y > 0.0f ? y : 0.0f;
        }
    }
    for (int64_t l = 0; l < s->n_hidden; l++) {
        fill(o, n, s->b_hid + l * M, M);
        products(o, M, a, M, n, M, s->w_hid + l * M * M, M);
        for (int64_t i = 0; i < n * M; i++) a[i] = o[i] > 0.0f ? o[i] : 0.0f;
    }
    fill(s->logits, n, s->b_out, s->levels);
    products(s->logits, s->levels, a, M, n, M, s->w_out, s->levels);
}

/* The categorical draw: softmax(logits / T), the first index whose float32 running CDF
 * exceeds u (the numpy stepper's count of CDF values <= u). */
static int64_t draw(const float *logits, int64_t levels, float temperature, float u,
                    float *e) {
    float m = -INFINITY, total = 0.0f, run = 0.0f;
    for (int64_t i = 0; i < levels; i++) {
        e[i] = logits[i] / temperature;
        m = e[i] > m ? e[i] : m;
    }
    for (int64_t i = 0; i < levels; i++) total += (e[i] = expf(e[i] - m));
    for (int64_t i = 0; i < levels; i++) {
        run += e[i] / total;
        if (run > u) return i;
    }
    return levels - 1;
}

/* `steps` samples from time t0: every tier whose frame starts, the MLP, the draw with
 * uniforms u [steps, n], each code written to buf [n, stride] at column ctx + t. With u NULL
 * only the logits of time t0 are computed (s->logits; tests feed their own codes). */
void srnn_run(const srnn_t *s, int64_t *buf, int64_t t0, int64_t steps, const float *u) {
    for (int64_t t = t0; t < t0 + (u ? steps : 1); t++) {
        for (int64_t k = 0; k < s->n_tiers; k++)
            if (t % s->sizes[k] == 0) tier_step(s, k, t, buf);
        mlp_step(s, t, buf);
        if (!u) return;
        for (int64_t b = 0; b < s->n; b++)
            buf[b * s->stride + s->ctx + t] = draw(s->logits + b * s->levels, s->levels,
                                                   s->temperature, u[(t - t0) * s->n + b], s->e);
    }
}
