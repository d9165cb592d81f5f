// Reference kernels: rotary embedding, KV cache writes, causal grouped-query attention.
// With an f16 cache, Q and the softmax probabilities are rounded to f16 before their products,
// as ggml does when it multiplies by an f16 tensor.
#include <cmath>

#include "ir/interp/ref_kernels.h"
#include "support/error.h"
#include "support/fp16.h"

namespace nibble::ref {

void softmax_row(float* x, const float* mask, int64_t n, float scale);

void rope(const KernelArgs& a) {
  a.out.f = a.in[0]->to_f32();
  const std::vector<int32_t>& pos = a.in[1]->i;
  const int64_t n = a.out.shape[0], heads = a.out.shape[1], hd = a.out.shape[2];
  const int64_t n_dims = *a.op.attrs.get_int("n_dims");
  const bool neox = a.op.attrs.get_string("mode") == "neox";
  const float freq_base = float(*a.op.attrs.get_float("freq_base"));
  const float freq_scale = float(a.op.attrs.float_or("freq_scale", 1.0));
  // theta_i = pos * base^(-2i/n_dims), built by repeated multiplication as ggml does.
  const float theta_scale = std::pow(freq_base, -2.0f / float(n_dims));
  std::vector<float> cos_t(size_t(n_dims / 2)), sin_t(size_t(n_dims / 2));
  for (int64_t t = 0; t < n; ++t) {
    float theta = float(pos[t]);
    for (int64_t i = 0; i < n_dims / 2; ++i) {
      cos_t[i] = std::cos(freq_scale * theta);
      sin_t[i] = std::sin(freq_scale * theta);
      theta *= theta_scale;
    }
    for (int64_t h = 0; h < heads; ++h) {
      float* x = a.out.f.data() + (t * heads + h) * hd;
      for (int64_t i = 0; i < n_dims / 2; ++i) {
        int64_t i0 = neox ? i : 2 * i, i1 = neox ? i + n_dims / 2 : 2 * i + 1;
        float x0 = x[i0], x1 = x[i1];
        x[i0] = x0 * cos_t[i] - x1 * sin_t[i];
        x[i1] = x0 * sin_t[i] + x1 * cos_t[i];
      }
    }
  }
}

namespace {

float cache_at(const RefTensor& c, int64_t idx) {
  return c.packed_dtype == DType::F16 ? fp16_to_f32(reinterpret_cast<const uint16_t*>(c.packed)[idx])
                                      : reinterpret_cast<const float*>(c.packed)[idx];
}

}  // namespace

void kv_write(const KernelArgs& a) {
  const RefTensor& cache = *a.in[0];
  std::vector<float> x = a.in[1]->to_f32();
  const std::vector<int32_t>& pos = a.in[2]->i;
  const int64_t n_ctx = cache.shape[0], row = cache.shape[1] * cache.shape[2];
  for (size_t t = 0; t < pos.size(); ++t) {
    if (pos[t] < 0 || pos[t] >= n_ctx) fail("kv_write: position {} is outside the context of {}", pos[t], n_ctx);
    for (int64_t j = 0; j < row; ++j) {
      int64_t idx = pos[t] * row + j;
      if (cache.packed_dtype == DType::F16)
        reinterpret_cast<uint16_t*>(cache.state)[idx] = f32_to_fp16(x[t * row + j]);
      else
        reinterpret_cast<float*>(cache.state)[idx] = x[t * row + j];
    }
  }
  a.out.packed = cache.packed;
  a.out.state = cache.state;
  a.out.packed_dtype = cache.packed_dtype;
}

void attention(const KernelArgs& a) {
  std::vector<float> q = a.in[0]->to_f32();
  const RefTensor& k = *a.in[1];
  const RefTensor& v = *a.in[2];
  const std::vector<int32_t>& pos = a.in[3]->i;
  const int64_t n = a.out.shape[0], heads = a.out.shape[1], hd = a.out.shape[2];
  const int64_t kv_heads = k.shape[1], n_ctx = k.shape[0];
  const float scale = float(*a.op.attrs.get_float("scale"));
  const bool f16 = k.packed_dtype == DType::F16;
  a.out.f.assign(size_t(n * heads * hd), 0.0f);
  std::vector<float> scores;
  for (int64_t t = 0; t < n; ++t) {
    if (pos[t] < 0 || pos[t] >= n_ctx) fail("attention: position {} is outside the context of {}", pos[t], n_ctx);
    const int64_t n_kv = pos[t] + 1;  // causal: cells 0..pos
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t kvh = h / (heads / kv_heads);
      const float* qv = q.data() + (t * heads + h) * hd;
      scores.assign(size_t(n_kv), 0.0f);
      for (int64_t c = 0; c < n_kv; ++c) {
        double s = 0;
        for (int64_t d = 0; d < hd; ++d) {
          float qd = f16 ? round_to_fp16(qv[d]) : qv[d];
          s += double(qd) * cache_at(k, (c * kv_heads + kvh) * hd + d);
        }
        scores[c] = float(s);
      }
      softmax_row(scores.data(), nullptr, n_kv, scale);
      float* o = a.out.f.data() + (t * heads + h) * hd;
      for (int64_t d = 0; d < hd; ++d) {
        double s = 0;
        for (int64_t c = 0; c < n_kv; ++c) {
          float p = f16 ? round_to_fp16(scores[c]) : scores[c];
          s += double(p) * cache_at(v, (c * kv_heads + kvh) * hd + d);
        }
        o[d] = float(s);
      }
    }
  }
}

}  // namespace nibble::ref
