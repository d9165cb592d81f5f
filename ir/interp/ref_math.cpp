// Reference kernels: embedding, dequantization, matrix products, element-wise and row-wise ops.
// Sums accumulate in double so the oracle is more accurate than any backend it checks.
#include <cmath>

#include "ir/formats/vec_dot.h"
#include "ir/interp/ref_kernels.h"
#include "support/error.h"

namespace nibble::ref {

namespace {

std::vector<float> f32_of(const RefTensor& t) { return t.to_f32(); }

// Runs fn(row_in, row_out, len) over the rows of operand 0 into out.
template <typename Fn>
void rowwise(const KernelArgs& a, Fn fn) {
  std::vector<float> x = f32_of(*a.in[0]);
  int64_t cols = a.in[0]->cols(), rows = a.in[0]->rows();
  a.out.f.resize(x.size());
  for (int64_t r = 0; r < rows; ++r) fn(x.data() + r * cols, a.out.f.data() + r * cols, cols);
}

template <typename Fn>
void binary(const KernelArgs& a, Fn fn) {
  std::vector<float> x = f32_of(*a.in[0]), y = f32_of(*a.in[1]);
  a.out.f.resize(x.size());
  size_t period = y.size();  // y broadcasts over x's leading dims
  for (size_t i = 0; i < x.size(); ++i) a.out.f[i] = fn(x[i], y[i % period]);
}

float silu_f(float x) { return x / (1.0f + std::exp(-x)); }

}  // namespace

void embedding(const KernelArgs& a) {
  const RefTensor& table = *a.in[0];
  const RefTensor& ids = *a.in[1];
  int64_t vocab = table.shape[0], dim = table.shape[1];
  a.out.f.resize(size_t(ids.numel() * dim));
  for (int64_t t = 0; t < ids.numel(); ++t) {
    int32_t id = ids.i[t];
    if (id < 0 || id >= vocab) fail("embedding: token id {} is out of range [0, {})", id, vocab);
    table.row(id, a.out.f.data() + t * dim);
  }
}

// Dequantization stays lazy: the result views the packed rows, decoded where it is read.
void dequant(const KernelArgs& a) {
  a.out.packed = a.in[0]->packed;
  a.out.packed_dtype = a.in[0]->packed_dtype;
  a.out.f = a.in[0]->f;
}

// qmatmul on quantized activations: ggml's integer dot products (ir/formats/vec_dot.h), the
// oracle for backends that quantize activations.
static void qmatmul_quantized(const KernelArgs& a) {
  const RefTensor& x = *a.in[0];
  const RefTensor& w = *a.in[1];
  const int64_t K = w.shape[1], N = w.shape[0], M = x.rows();
  const int64_t x_row = row_bytes(x.packed_dtype, K), w_row = row_bytes(w.packed_dtype, K);
  a.out.f.assign(size_t(M * N), 0.0f);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n)
      a.out.f[m * N + n] = vec_dot(w.packed_dtype, w.packed + n * w_row, x.packed + m * x_row, K);
}

// The qmatmul epilogue: + bias per column, + residual.
static void qmatmul_epilogue(const KernelArgs& a) {
  size_t next = 2;
  const int64_t N = a.out.shape.back();
  if (a.op.attrs.bool_or("bias", false)) {
    std::vector<float> bias = f32_of(*a.in[next++]);
    for (size_t i = 0; i < a.out.f.size(); ++i) a.out.f[i] += bias[i % N];
  }
  if (a.op.attrs.bool_or("residual", false)) {
    std::vector<float> r = f32_of(*a.in[next++]);
    for (size_t i = 0; i < a.out.f.size(); ++i) a.out.f[i] += r[i];
  }
}

void quantize(const KernelArgs& a) {
  std::vector<float> x = f32_of(*a.in[0]);
  const int64_t K = a.in[0]->cols(), rows = a.in[0]->rows();
  const DType t = a.out.dtype;
  a.out.owned.resize(size_t(rows * row_bytes(t, K)));
  for (int64_t r = 0; r < rows; ++r)
    activation_quantize_row(t)(x.data() + r * K, a.out.owned.data() + r * row_bytes(t, K), K);
  a.out.packed = a.out.owned.data();
  a.out.packed_dtype = t;
}

void qmatmul(const KernelArgs& a) {
  if (a.in[0]->is_packed() && a.in[0]->packed_dtype != DType::F32) {
    qmatmul_quantized(a);
  } else {
    matmul(a);
  }
  qmatmul_epilogue(a);
}

// matmul and qmatmul on f32 activations: a[..., M, K] x b; b rows are decoded one at a time when
// transposed.
void matmul(const KernelArgs& a) {
  std::vector<float> x = f32_of(*a.in[0]);
  const RefTensor& b = *a.in[1];
  bool transpose_b = a.op.op_name() == "qmatmul" || a.op.attrs.bool_or("transpose_b", false);
  int64_t K = a.in[0]->cols(), M = a.in[0]->rows();
  int64_t N = transpose_b ? b.shape[0] : b.shape[1];
  a.out.f.assign(size_t(M * N), 0.0f);
  std::vector<float> brow(static_cast<size_t>(K));
  std::vector<float> bt;  // [K, N] operand, materialized
  if (!transpose_b) bt = b.to_f32();
  for (int64_t n = 0; n < N; ++n) {
    if (transpose_b) {
      b.row(n, brow.data());
    } else {
      for (int64_t k = 0; k < K; ++k) brow[k] = bt[k * N + n];
    }
    for (int64_t m = 0; m < M; ++m) {
      const float* xr = x.data() + m * K;
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += double(xr[k]) * brow[k];
      a.out.f[m * N + n] = float(s);
    }
  }
}

void add(const KernelArgs& a) { binary(a, [](float x, float y) { return x + y; }); }
void mul(const KernelArgs& a) { binary(a, [](float x, float y) { return x * y; }); }
void swiglu(const KernelArgs& a) { binary(a, [](float g, float u) { return silu_f(g) * u; }); }

void silu(const KernelArgs& a) {
  rowwise(a, [](const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = silu_f(x[i]);
  });
}

void gelu(const KernelArgs& a) {
  rowwise(a, [](const float* x, float* y, int64_t n) {
    const float c = std::sqrt(2.0f / float(M_PI));
    for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.0f + std::tanh(c * x[i] * (1.0f + 0.044715f * x[i] * x[i])));
  });
}

// Optional operands 1 (scale) and 2 (bias) of the norms, applied per column.
static void scale_and_shift(const KernelArgs& a) {
  int64_t cols = a.out.shape.back();
  if (a.in.size() > 1) {
    std::vector<float> s = f32_of(*a.in[1]);
    for (size_t i = 0; i < a.out.f.size(); ++i) a.out.f[i] *= s[i % cols];
  }
  if (a.in.size() > 2) {
    std::vector<float> b = f32_of(*a.in[2]);
    for (size_t i = 0; i < a.out.f.size(); ++i) a.out.f[i] += b[i % cols];
  }
}

void rms_norm(const KernelArgs& a) {
  const float eps = float(*a.op.attrs.get_float("eps"));
  rowwise(a, [eps](const float* x, float* y, int64_t n) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
    const float scale = 1.0f / std::sqrt(float(ss / n) + eps);
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
  });
  scale_and_shift(a);
}

void layer_norm(const KernelArgs& a) {
  const float eps = float(*a.op.attrs.get_float("eps"));
  rowwise(a, [eps](const float* x, float* y, int64_t n) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; ++i) mean += x[i];
    mean /= n;
    for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
    const float scale = 1.0f / std::sqrt(float(var / n) + eps);
    for (int64_t i = 0; i < n; ++i) y[i] = float(x[i] - mean) * scale;
  });
  scale_and_shift(a);
}

// Shared with attention: softmax of x * scale (+ mask) over n entries, in place.
void softmax_row(float* x, const float* mask, int64_t n, float scale) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = x[i] * scale + (mask ? mask[i] : 0.0f);
    mx = std::max(mx, x[i]);
  }
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = mx == -INFINITY ? 0.0f : std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = sum > 0 ? float(1.0 / sum) : 0.0f;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void softmax(const KernelArgs& a) {
  const float scale = float(a.op.attrs.float_or("scale", 1.0));
  std::vector<float> mask;
  if (a.in.size() > 1) mask = f32_of(*a.in[1]);
  a.out.f = f32_of(*a.in[0]);
  int64_t cols = a.out.shape.back(), rows = int64_t(a.out.f.size()) / cols;
  for (int64_t r = 0; r < rows; ++r) {
    const float* m = mask.empty() ? nullptr : mask.data() + (r * cols) % mask.size();
    softmax_row(a.out.f.data() + r * cols, m, cols, scale);
  }
}

}  // namespace nibble::ref
