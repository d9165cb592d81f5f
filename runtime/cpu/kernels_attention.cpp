// Built-in kernels of the attention block: rope, KV-cache writes, causal grouped-query attention.
// Numerics follow ir/interp/ref_attention.cpp: rope angles by repeated multiplication in float;
// with an f16 cache, Q and the softmax probabilities are rounded to f16 before their products.
// Positions outside [0, n_ctx) are skipped (kernels must not throw); the executor rejects them
// before a call.
#include <algorithm>
#include <cstring>

#include "runtime/cpu/builtin_kernels.h"
#include "runtime/cpu/f16_ops.h"
#include "runtime/cpu/kernels_common.h"

namespace nibble::rt::kern {

// bufs: x [n, heads, head_dim], pos i32 [n], out. ints: heads, head_dim, n_dims, neox. floats:
// freq_base, freq_scale. Tasks are tokens. Dims past n_dims pass through.
NB_CLONES void rope_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  const float* x = buf<const float>(a, 0);
  const int32_t* pos = buf<const int32_t>(a, 1);
  float* o = buf<float>(a, 2);
  const int64_t heads = a->ints[0], hd = a->ints[1], n_dims = a->ints[2];
  const bool neox = a->ints[3] != 0;
  const float freq_base = a->floats[0], freq_scale = a->floats[1];
  const int64_t half = n_dims / 2;
  const float theta_scale = std::pow(freq_base, -2.0f / float(n_dims));
  constexpr int64_t kChunk = 64;  // angle pairs per pass: a stack table, any n_dims
  float cos_t[kChunk], sin_t[kChunk];
  for (int64_t t = tb; t < te; ++t) {
    const float* xt = x + t * heads * hd;
    float* ot = o + t * heads * hd;
    if (ot != xt)
      for (int64_t h = 0; h < heads; ++h)
        std::memcpy(ot + h * hd + n_dims, xt + h * hd + n_dims, size_t(hd - n_dims) * sizeof(float));
    float theta = float(pos[t]);
    for (int64_t i0 = 0; i0 < half; i0 += kChunk) {
      const int64_t len = std::min(kChunk, half - i0);
      for (int64_t i = 0; i < len; ++i) {  // sequential: theta is a running product, as in ggml
        cos_t[i] = std::cos(freq_scale * theta);
        sin_t[i] = std::sin(freq_scale * theta);
        theta *= theta_scale;
      }
      for (int64_t h = 0; h < heads; ++h) {
        const float* xh = xt + h * hd;
        float* oh = ot + h * hd;
        if (neox) {
          const float* x0 = xh + i0;
          const float* x1 = xh + half + i0;
          float* o0 = oh + i0;
          float* o1 = oh + half + i0;
          for (int64_t i = 0; i < len; ++i) {
            const float a0 = x0[i], a1 = x1[i];
            o0[i] = a0 * cos_t[i] - a1 * sin_t[i];
            o1[i] = a0 * sin_t[i] + a1 * cos_t[i];
          }
        } else {
          const float* xp = xh + 2 * i0;
          float* op = oh + 2 * i0;
          for (int64_t i = 0; i < len; ++i) {
            const float a0 = xp[2 * i], a1 = xp[2 * i + 1];
            op[2 * i] = a0 * cos_t[i] - a1 * sin_t[i];
            op[2 * i + 1] = a0 * sin_t[i] + a1 * cos_t[i];
          }
        }
      }
    }
  }
}

// bufs: x f32 [n, row], pos i32 [n], cache [n_ctx, row]. ints: row, n_ctx. Tasks are tokens.
void kv_write_f16(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  const float* x = buf<const float>(a, 0);
  const int32_t* pos = buf<const int32_t>(a, 1);
  uint16_t* cache = buf<uint16_t>(a, 2);
  const int64_t row = a->ints[0], n_ctx = a->ints[1];
  const F16Ops& ops = f16_ops();
  for (int64_t t = tb; t < te; ++t)
    if (pos[t] >= 0 && pos[t] < n_ctx) ops.to_f16(x + t * row, cache + pos[t] * row, row);
}

void kv_write_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  const float* x = buf<const float>(a, 0);
  const int32_t* pos = buf<const int32_t>(a, 1);
  float* cache = buf<float>(a, 2);
  const int64_t row = a->ints[0], n_ctx = a->ints[1];
  for (int64_t t = tb; t < te; ++t)
    if (pos[t] >= 0 && pos[t] < n_ctx) std::memcpy(cache + pos[t] * row, x + t * row, size_t(row) * sizeof(float));
}

namespace {

struct AttnParams {
  const float* q;
  const void* k;
  const void* v;
  const int32_t* pos;
  float* out;
  int64_t H, H_kv, d, n_ctx;
  float scale;
  float* scores;  // scratch: n_ctx
  float* qr;      // scratch: d (rounded query)
  float* acc;     // scratch: d
};

AttnParams attn_params(const NibbleKernelArgs* a) {
  AttnParams p;
  p.q = buf<const float>(a, 0);
  p.k = a->bufs[1];
  p.v = a->bufs[2];
  p.pos = buf<const int32_t>(a, 3);
  p.out = buf<float>(a, 4);
  p.H = a->ints[0], p.H_kv = a->ints[1], p.d = a->ints[2], p.n_ctx = a->ints[3];
  p.scale = a->floats[0];
  // Layout within attention_scratch_bytes(n_ctx, d): each piece starts 64-byte aligned.
  const int64_t dpad = (p.d + 15) & ~int64_t(15);
  float* s = static_cast<float*>(a->scratch);
  p.qr = s;
  p.acc = s + dpad;
  p.scores = s + 2 * dpad;
  return p;
}

// scores -> probabilities in place: softmax(s * scale), max-subtracted, as the reference's
// softmax_row (which attention calls without a mask).
NB_INLINE void softmax_scores(float* s, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) s[i] *= scale;
  const float mx = max_of(s, n);
  if (mx == -INFINITY) {
    for (int64_t i = 0; i < n; ++i) s[i] = 0.0f;
    return;
  }
  for (int64_t i = 0; i < n; ++i) s[i] = exp_approx(s[i] - mx);
  const float sum = sum_of(s, n);
  const float inv = sum > 0 ? 1.0f / sum : 0.0f;
  for (int64_t i = 0; i < n; ++i) s[i] *= inv;
}

// The position's causal window 0..pos (clamped to the cache), or 0 rows when pos is invalid.
NB_INLINE int64_t window(const AttnParams& p, int64_t t) {
  const int64_t pos = p.pos[t];
  return pos < 0 ? 0 : std::min(pos + 1, p.n_ctx);
}

NB_CLONES void softmax_scores_clone(float* s, int64_t n, float scale) { softmax_scores(s, n, scale); }

NB_CLONES void scores_f32(const float* q, const float* k, int64_t stride, int64_t d, int64_t n, float* out) {
  for (int64_t c = 0; c < n; ++c) out[c] = dot_f32(q, k + c * stride, d);
}

NB_CLONES void wsum_f32(const float* p, const float* v, int64_t stride, int64_t d, int64_t n, float* acc) {
  for (int64_t j = 0; j < d; ++j) acc[j] = 0.0f;
  for (int64_t c = 0; c < n; ++c) {
    const float* row = v + c * stride;
    const float pc = p[c];
    for (int64_t j = 0; j < d; ++j) acc[j] += pc * row[j];
  }
}

}  // namespace

// bufs: q [n, H, d], k cache [n_ctx, H_kv, d], v cache, pos i32 [n], out [n, H, d].
// ints: H, H_kv, d, n_ctx. floats: scale. Task t*H + h: token t, query head h; head h reads kv head
// h / (H / H_kv). Out may alias q: q is read into scratch before out is written.
void attention_f16(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  const AttnParams p = attn_params(a);
  const F16Ops& ops = f16_ops();
  const uint16_t* K = static_cast<const uint16_t*>(p.k);
  const uint16_t* V = static_cast<const uint16_t*>(p.v);
  const int64_t group = p.H / p.H_kv, stride = p.H_kv * p.d;
  for (int64_t task = tb; task < te; ++task) {
    const int64_t t = task / p.H, h = task % p.H, kvh = h / group;
    const int64_t n_kv = window(p, t);
    ops.round_f16(p.q + task * p.d, p.qr, p.d);
    ops.scores(p.qr, K + kvh * p.d, stride, p.d, n_kv, p.scores);
    softmax_scores_clone(p.scores, n_kv, p.scale);
    ops.round_f16(p.scores, p.scores, n_kv);
    ops.weighted_sum(p.scores, V + kvh * p.d, stride, p.d, n_kv, p.acc);
    std::memcpy(p.out + task * p.d, p.acc, size_t(p.d) * sizeof(float));
  }
}

void attention_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  const AttnParams p = attn_params(a);
  const float* K = static_cast<const float*>(p.k);
  const float* V = static_cast<const float*>(p.v);
  const int64_t group = p.H / p.H_kv, stride = p.H_kv * p.d;
  for (int64_t task = tb; task < te; ++task) {
    const int64_t t = task / p.H, h = task % p.H, kvh = h / group;
    const int64_t n_kv = window(p, t);
    scores_f32(p.q + task * p.d, K + kvh * p.d, stride, p.d, n_kv, p.scores);
    softmax_scores_clone(p.scores, n_kv, p.scale);
    wsum_f32(p.scores, V + kvh * p.d, stride, p.d, n_kv, p.acc);
    std::memcpy(p.out + task * p.d, p.acc, size_t(p.d) * sizeof(float));
  }
}

}  // namespace nibble::rt::kern
