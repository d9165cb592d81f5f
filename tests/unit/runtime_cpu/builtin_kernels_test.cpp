// Every built-in kernel against a straightforward scalar reference (double sums, libm), with odd
// sizes, outputs pre-filled with NaN, on 1 and 3 threads.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "runtime/cpu/builtin_kernels.h"
#include "support/error.h"
#include "support/fp16.h"
#include "tests/unit/runtime_cpu/test_util.h"

namespace nibble::rt {
namespace {

using test::Call;
using test::nan_filled;
using test::normalized_error;
using test::random_floats;
using test::run_kernel;

const int kThreads[] = {1, 3};
const int64_t kCols[] = {1, 7, 64, 1000};

NibbleKernelFn kernel(const char* name) {
  NibbleKernelFn fn = find_builtin_kernel(name);
  EXPECT_NE(fn, nullptr) << name;
  return fn;
}

TEST(BuiltinKernels, TableCoversTheDocumentedSymbols) {
  for (const char* s : {"add_f32", "mul_f32", "swiglu_f32", "silu_f32", "gelu_f32", "rms_norm_f32", "layer_norm_f32",
                        "softmax_f32", "rope_f32", "kv_write_f16", "kv_write_f32", "attention_f16", "attention_f32",
                        "argmax_f32", "copy_bytes"})
    EXPECT_NE(find_builtin_kernel(s), nullptr) << s;
  EXPECT_EQ(find_builtin_kernel("qmatmul_q4_0"), nullptr);
  EXPECT_EQ(find_builtin_kernel(""), nullptr);
  EXPECT_EQ(builtin_kernel_names().size(), 15u);
}

TEST(BuiltinKernels, AddMulWithBroadcast) {
  for (const char* name : {"add_f32", "mul_f32"})
    for (int64_t C : kCols)
      for (int64_t rows : {1, 4, 5})
        for (int64_t b_rows : {0, 1, 2})
          for (int threads : kThreads) {
            if (b_rows == 2 && rows % 2) continue;
            SCOPED_TRACE(testing::Message() << name << " C=" << C << " rows=" << rows << " b_rows=" << b_rows
                                            << " threads=" << threads);
            const bool add = name[0] == 'a';
            auto x = random_floats(size_t(rows * C), 1);
            auto y = random_floats(size_t((b_rows ? b_rows : rows) * C), 2);
            auto out = nan_filled(x.size());
            std::vector<double> want(x.size());
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t c = 0; c < C; ++c) {
                const float a = x[r * C + c], b = y[(b_rows ? r % b_rows : r) * C + c];
                want[r * C + c] = add ? a + b : a * b;
              }
            run_kernel(kernel(name), {{x.data(), y.data(), out.data()}, {C, b_rows}, {}}, rows, threads);
            EXPECT_LE(normalized_error(out, want), 1e-7);
          }
}

TEST(BuiltinKernels, InPlaceAdd) {
  auto x = random_floats(3 * 64, 3), y = random_floats(64, 4);
  auto want = x;
  for (size_t i = 0; i < want.size(); ++i) want[i] += y[i % 64];
  run_kernel(kernel("add_f32"), {{x.data(), y.data(), x.data()}, {64, 1}, {}}, 3, 3);
  EXPECT_EQ(x, want);
}

double silu_ref(double x) { return x / (1.0 + std::exp(-x)); }
// 0.5 x (1 + tanh(y)) written as x / (1 + exp(-2y)): equal, without the cancellation for x << 0.
double gelu_ref(double x) {
  const double c = std::sqrt(2.0 / M_PI);
  return x / (1.0 + std::exp(-2.0 * c * x * (1.0 + 0.044715 * x * x)));
}

TEST(BuiltinKernels, Activations) {
  for (int64_t C : kCols)
    for (int threads : kThreads) {
      SCOPED_TRACE(testing::Message() << "C=" << C << " threads=" << threads);
      const int64_t rows = 3;
      auto g = random_floats(size_t(rows * C), 5, -12.0f, 12.0f);
      auto u = random_floats(g.size(), 6, -2.0f, 2.0f);
      if (C >= 64) g[3] = 95.0f, g[4] = -95.0f, g[5] = 0.0f, g[6] = -1e-8f;  // exp's clamps, zero, tiny
      std::vector<double> ws(g.size()), wg(g.size()), wsw(g.size());
      for (size_t i = 0; i < g.size(); ++i) {
        ws[i] = silu_ref(g[i]);
        wg[i] = gelu_ref(g[i]);
        wsw[i] = float(silu_ref(g[i])) * u[i];
      }
      auto os = nan_filled(g.size()), og = nan_filled(g.size()), osw = nan_filled(g.size());
      run_kernel(kernel("silu_f32"), {{g.data(), os.data()}, {C}, {}}, rows, threads);
      run_kernel(kernel("gelu_f32"), {{g.data(), og.data()}, {C}, {}}, rows, threads);
      run_kernel(kernel("swiglu_f32"), {{g.data(), u.data(), osw.data()}, {C}, {}}, rows, threads);
      EXPECT_LE(normalized_error(os, ws), 1e-6);
      EXPECT_LE(normalized_error(og, wg), 1e-6);
      EXPECT_LE(normalized_error(osw, wsw), 1e-6);
      for (size_t i = 0; i < g.size(); ++i) {  // element-wise too: small values must not lose digits
        EXPECT_NEAR(os[i], ws[i], 1e-6 * std::abs(ws[i]) + 1e-30) << i << " x=" << g[i];
        // gelu's exp argument 2y carries float rounding of ~1e-7 |2y|: so does its result.
        const double arg = std::abs(2 * 0.79788456 * g[i] * (1 + 0.044715 * g[i] * g[i]));
        EXPECT_NEAR(og[i], wg[i], 1e-6 * (2 + arg) * std::abs(wg[i]) + 1e-30) << i << " x=" << g[i];
      }
    }
}

TEST(BuiltinKernels, RmsNorm) {
  for (int64_t C : kCols)
    for (bool with_scale : {false, true})
      for (int threads : kThreads) {
        SCOPED_TRACE(testing::Message() << "C=" << C << " scale=" << with_scale << " threads=" << threads);
        const int64_t rows = 5;
        const float eps = 1e-5f;
        auto x = random_floats(size_t(rows * C), 7, -3.0f, 3.0f);
        auto s = random_floats(size_t(C), 8, 0.5f, 1.5f);
        auto out = nan_filled(x.size());
        std::vector<double> want(x.size());
        for (int64_t r = 0; r < rows; ++r) {  // ir/interp's formula
          double ss = 0;
          for (int64_t i = 0; i < C; ++i) ss += double(x[r * C + i]) * x[r * C + i];
          const float sc = 1.0f / std::sqrt(float(ss / C) + eps);
          for (int64_t i = 0; i < C; ++i) want[r * C + i] = (x[r * C + i] * sc) * (with_scale ? s[i] : 1.0f);
        }
        run_kernel(kernel("rms_norm_f32"), {{x.data(), with_scale ? s.data() : nullptr, out.data()}, {C}, {eps}}, rows,
                   threads);
        EXPECT_LE(normalized_error(out, want), 1e-6);
        for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], want[i], 1e-6 * std::abs(want[i])) << i;
      }
}

TEST(BuiltinKernels, LayerNorm) {
  for (int64_t C : kCols)
    for (int mask = 0; mask < 4; ++mask)
      for (int threads : kThreads) {
        const bool with_scale = mask & 1, with_bias = mask & 2;
        SCOPED_TRACE(testing::Message() << "C=" << C << " scale=" << with_scale << " bias=" << with_bias
                                        << " threads=" << threads);
        const int64_t rows = 4;
        const float eps = 1e-6f;
        auto x = random_floats(size_t(rows * C), 9, 2.0f, 5.0f);  // an offset mean: variance must be centered
        auto s = random_floats(size_t(C), 10, 0.5f, 1.5f), b = random_floats(size_t(C), 11);
        auto out = nan_filled(x.size());
        std::vector<double> want(x.size());
        for (int64_t r = 0; r < rows; ++r) {
          double mean = 0, var = 0;
          for (int64_t i = 0; i < C; ++i) mean += x[r * C + i];
          mean /= C;
          for (int64_t i = 0; i < C; ++i) var += (x[r * C + i] - mean) * (x[r * C + i] - mean);
          const double sc = 1.0 / std::sqrt(var / C + eps);
          for (int64_t i = 0; i < C; ++i)
            want[r * C + i] = (x[r * C + i] - mean) * sc * (with_scale ? s[i] : 1.0) + (with_bias ? b[i] : 0.0);
        }
        run_kernel(kernel("layer_norm_f32"),
                   {{x.data(), with_scale ? s.data() : nullptr, with_bias ? b.data() : nullptr, out.data()}, {C}, {eps}},
                   rows, threads);
        EXPECT_LE(normalized_error(out, want), 2e-6);
      }
}

void softmax_ref(const float* x, const float* mask, int64_t n, float scale, double* y) {
  double mx = -INFINITY;
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    v[i] = double(x[i] * scale + (mask ? mask[i] : 0.0f));
    mx = std::max(mx, v[i]);
  }
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (v[i] = mx == -INFINITY ? 0.0 : std::exp(v[i] - mx));
  for (int64_t i = 0; i < n; ++i) y[i] = sum > 0 ? v[i] / sum : 0.0;
}

TEST(BuiltinKernels, Softmax) {
  for (int64_t C : kCols)
    for (int64_t mask_rows : {0, 1, 4})
      for (int threads : kThreads) {
        SCOPED_TRACE(testing::Message() << "C=" << C << " mask_rows=" << mask_rows << " threads=" << threads);
        const int64_t rows = 4;
        const float scale = 0.125f;
        auto x = random_floats(size_t(rows * C), 12, -40.0f, 40.0f);
        std::vector<float> mask(static_cast<size_t>(std::max<int64_t>(mask_rows, 1) * C), 0.0f);
        for (int64_t r = 0; r < std::max<int64_t>(mask_rows, 1); ++r)  // causal-style: -inf past column r
          for (int64_t c = r + 1; c < C; ++c) mask[r * C + c] = -INFINITY;
        if (mask_rows == 4 && C > 1)
          for (int64_t c = 0; c < C; ++c) mask[3 * C + c] = -INFINITY;  // a fully masked row: zeros
        const float* m = mask_rows ? mask.data() : nullptr;
        auto out = nan_filled(x.size());
        std::vector<double> want(x.size());
        for (int64_t r = 0; r < rows; ++r)
          softmax_ref(x.data() + r * C, m ? m + (r % mask_rows) * C : nullptr, C, scale, want.data() + r * C);
        run_kernel(kernel("softmax_f32"), {{x.data(), const_cast<float*>(m), out.data()}, {C, mask_rows}, {scale}}, rows,
                   threads);
        EXPECT_LE(normalized_error(out, want), 1e-6);
      }
}

// ir/interp's rope: angles theta *= theta_scale in float.
std::vector<float> rope_ref(const std::vector<float>& x, const std::vector<int32_t>& pos, int64_t heads, int64_t hd,
                            int64_t n_dims, bool neox, float base, float fscale) {
  std::vector<float> out = x;
  const float theta_scale = std::pow(base, -2.0f / float(n_dims));
  for (size_t t = 0; t < pos.size(); ++t) {
    std::vector<double> c(static_cast<size_t>(n_dims / 2)), s(static_cast<size_t>(n_dims / 2));
    float theta = float(pos[t]);
    for (int64_t i = 0; i < n_dims / 2; ++i) {
      c[i] = std::cos(fscale * theta);
      s[i] = std::sin(fscale * theta);
      theta *= theta_scale;
    }
    for (int64_t h = 0; h < heads; ++h) {
      float* v = out.data() + (int64_t(t) * heads + h) * hd;
      for (int64_t i = 0; i < n_dims / 2; ++i) {
        const int64_t i0 = neox ? i : 2 * i, i1 = neox ? i + n_dims / 2 : 2 * i + 1;
        const double x0 = v[i0], x1 = v[i1];
        v[i0] = float(x0 * c[i] - x1 * s[i]);
        v[i1] = float(x0 * s[i] + x1 * c[i]);
      }
    }
  }
  return out;
}

TEST(BuiltinKernels, Rope) {
  struct Shape {
    int64_t heads, hd, n_dims;
  };
  for (Shape sh : {Shape{1, 8, 8}, Shape{3, 64, 64}, Shape{2, 64, 32}, Shape{4, 256, 200}, Shape{1, 6, 2}})
    for (bool neox : {false, true})
      for (float fscale : {1.0f, 0.25f})
        for (int threads : kThreads)
          for (bool in_place : {false, true}) {
            SCOPED_TRACE(testing::Message() << "heads=" << sh.heads << " hd=" << sh.hd << " n_dims=" << sh.n_dims
                                            << " neox=" << neox << " fscale=" << fscale << " threads=" << threads
                                            << " in_place=" << in_place);
            const std::vector<int32_t> pos = {17, 18, 19, 4000, 0};
            const int64_t n = int64_t(pos.size());
            auto x = random_floats(size_t(n * sh.heads * sh.hd), 13);
            const auto want = rope_ref(x, pos, sh.heads, sh.hd, sh.n_dims, neox, 10000.0f, fscale);
            auto out = in_place ? x : nan_filled(x.size());
            Call c{{in_place ? out.data() : x.data(), const_cast<int32_t*>(pos.data()), out.data()},
                   {sh.heads, sh.hd, sh.n_dims, neox ? 1 : 0},
                   {10000.0f, fscale},
                   n};
            run_kernel(kernel("rope_f32"), c, n, threads);
            EXPECT_LE(normalized_error(out, want), 1e-6);
          }
}

TEST(BuiltinKernels, KvWrite) {
  const int64_t row = 3 * 24, n_ctx = 16;
  const std::vector<int32_t> pos = {5, 6, 7, 15, 0};
  const int64_t n = int64_t(pos.size());
  auto x = random_floats(size_t(n * row), 14, -70000.0f, 70000.0f);  // f16 overflow to inf, too
  x[3] = 1e-6f;                                                     // f16 subnormal
  x[4] = std::numeric_limits<float>::quiet_NaN();
  x[5] = -0.0f;
  for (int threads : kThreads) {
    SCOPED_TRACE(threads);
    std::vector<uint16_t> c16(static_cast<size_t>(n_ctx * row), 0xABCD);
    std::vector<float> c32(static_cast<size_t>(n_ctx * row), 42.0f);
    Call a16{{x.data(), const_cast<int32_t*>(pos.data()), c16.data()}, {row, n_ctx}, {}, n};
    Call a32{{x.data(), const_cast<int32_t*>(pos.data()), c32.data()}, {row, n_ctx}, {}, n};
    run_kernel(kernel("kv_write_f16"), a16, n, threads);
    run_kernel(kernel("kv_write_f32"), a32, n, threads);
    std::vector<int> written(static_cast<size_t>(n_ctx), -1);
    for (int64_t t = 0; t < n; ++t) written[pos[t]] = int(t);
    for (int64_t p = 0; p < n_ctx; ++p)
      for (int64_t j = 0; j < row; ++j) {
        const size_t idx = size_t(p * row + j);
        if (written[p] < 0) {
          ASSERT_EQ(c16[idx], 0xABCD);
          ASSERT_EQ(c32[idx], 42.0f);
        } else {
          const float v = x[size_t(written[p] * row + j)];
          ASSERT_EQ(c16[idx], f32_to_fp16(v)) << p << "," << j << " v=" << v;
          ASSERT_EQ(std::memcmp(&c32[idx], &v, 4), 0);
        }
      }
  }
}

// ir/interp's attention: double sums; with an f16 cache Q and the probabilities rounded to f16.
std::vector<double> attention_ref(const std::vector<float>& q, const void* k, const void* v, bool f16,
                                  const std::vector<int32_t>& pos, int64_t H, int64_t H_kv, int64_t d, float scale) {
  auto at = [&](const void* c, int64_t i) {
    return f16 ? fp16_to_f32(static_cast<const uint16_t*>(c)[i]) : static_cast<const float*>(c)[i];
  };
  const int64_t n = int64_t(pos.size());
  std::vector<double> out(static_cast<size_t>(n * H * d));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t kvh = h / (H / H_kv), n_kv = pos[t] + 1;
      const float* qv = q.data() + (t * H + h) * d;
      std::vector<float> sc(static_cast<size_t>(n_kv));
      for (int64_t c = 0; c < n_kv; ++c) {
        double s = 0;
        for (int64_t j = 0; j < d; ++j) s += double(f16 ? round_to_fp16(qv[j]) : qv[j]) * at(k, (c * H_kv + kvh) * d + j);
        sc[c] = float(s);
      }
      std::vector<double> p(static_cast<size_t>(n_kv));
      softmax_ref(sc.data(), nullptr, n_kv, scale, p.data());
      for (int64_t j = 0; j < d; ++j) {
        double s = 0;
        for (int64_t c = 0; c < n_kv; ++c)
          s += double(f16 ? round_to_fp16(float(p[c])) : float(p[c])) * at(v, (c * H_kv + kvh) * d + j);
        out[(t * H + h) * d + j] = s;
      }
    }
  return out;
}

TEST(BuiltinKernels, Attention) {
  struct Shape {
    int64_t H, H_kv, d;
  };
  const int64_t n_ctx = 150;
  const std::vector<int32_t> pos = {3, 4, 5, 140, 0};  // not starting at 0; one long window
  const int64_t n = int64_t(pos.size());
  for (Shape sh : {Shape{4, 4, 64}, Shape{4, 2, 24}, Shape{8, 2, 128}, Shape{4, 1, 80}, Shape{2, 1, 7}, Shape{3, 3, 200}})
    for (bool f16 : {false, true})
      for (int threads : kThreads) {
        SCOPED_TRACE(testing::Message() << "H=" << sh.H << " H_kv=" << sh.H_kv << " d=" << sh.d << " f16=" << f16
                                        << " threads=" << threads);
        const float scale = 1.0f / std::sqrt(float(sh.d));
        auto q = random_floats(size_t(n * sh.H * sh.d), 15, -2.0f, 2.0f);
        auto kf = random_floats(size_t(n_ctx * sh.H_kv * sh.d), 16, -2.0f, 2.0f);
        auto vf = random_floats(kf.size(), 17);
        std::vector<uint16_t> k16(kf.size()), v16(kf.size());
        for (size_t i = 0; i < kf.size(); ++i) k16[i] = f32_to_fp16(kf[i]), v16[i] = f32_to_fp16(vf[i]);
        void* k = f16 ? static_cast<void*>(k16.data()) : kf.data();
        void* v = f16 ? static_cast<void*>(v16.data()) : vf.data();
        const auto want = attention_ref(q, k, v, f16, pos, sh.H, sh.H_kv, sh.d, scale);
        auto out = nan_filled(q.size());
        Call c{{q.data(), k, v, const_cast<int32_t*>(pos.data()), out.data()},
               {sh.H, sh.H_kv, sh.d, n_ctx},
               {scale},
               n,
               attention_scratch_bytes(n_ctx, sh.d)};
        run_kernel(kernel(f16 ? "attention_f16" : "attention_f32"), c, n * sh.H, threads);
        EXPECT_LE(normalized_error(out, want), f16 ? 3e-5 : 2e-6);
      }
}

TEST(BuiltinKernels, AttentionOutAliasesQ) {
  const int64_t H = 4, H_kv = 2, d = 32, n_ctx = 8;
  const std::vector<int32_t> pos = {2, 3};
  auto q = random_floats(size_t(2 * H * d), 18);
  auto k = random_floats(size_t(n_ctx * H_kv * d), 19), v = random_floats(k.size(), 20);
  const auto want = attention_ref(q, k.data(), v.data(), false, pos, H, H_kv, d, 0.2f);
  run_kernel(kernel("attention_f32"),
             {{q.data(), k.data(), v.data(), const_cast<int32_t*>(pos.data()), q.data()}, {H, H_kv, d, n_ctx}, {0.2f}, 2,
              attention_scratch_bytes(n_ctx, d)},
             2 * H, 3);
  EXPECT_LE(normalized_error(q, want), 2e-6);
}

TEST(BuiltinKernels, Argmax) {
  for (int64_t C : kCols)
    for (int threads : kThreads) {
      SCOPED_TRACE(testing::Message() << "C=" << C << " threads=" << threads);
      const int64_t rows = 6;
      auto x = random_floats(size_t(rows * C), 21);
      if (C >= 7) {
        x[1 * C + 2] = 5.0f, x[1 * C + 5] = 5.0f;                  // a tie: the first wins
        x[2 * C + 1] = NAN, x[2 * C + 3] = 9.0f;                   // NaN never wins
        x[3 * C + 0] = NAN;                                        // a leading NaN: index 0, as the reference
        for (int64_t c = 0; c < C; ++c) x[4 * C + c] = -INFINITY;  // all -inf: index 0
        x[5 * C + C - 1] = 2.0f;                                   // the last column
      }
      std::vector<int32_t> want(static_cast<size_t>(rows)), out(static_cast<size_t>(rows), -7);
      for (int64_t r = 0; r < rows; ++r) {
        int64_t best = 0;
        for (int64_t c = 1; c < C; ++c)
          if (x[r * C + c] > x[r * C + best]) best = c;
        want[r] = int32_t(best);
      }
      run_kernel(kernel("argmax_f32"), {{x.data(), out.data()}, {C}, {}}, rows, threads);
      EXPECT_EQ(out, want);
    }
}

TEST(BuiltinKernels, CopyBytes) {
  for (int threads : kThreads) {
    std::vector<uint8_t> src(13 * 5), dst(src.size(), 0xEE);
    for (size_t i = 0; i < src.size(); ++i) src[i] = uint8_t(i * 7);
    run_kernel(kernel("copy_bytes"), {{src.data(), dst.data()}, {13}, {}}, 5, threads);
    EXPECT_EQ(dst, src);
  }
}

TEST(BuiltinKernels, NeedsRejectBadSteps) {
  const int64_t ints4[] = {4, 3, 16, 32};
  const float f1[] = {0.1f};
  EXPECT_THROW(builtin_needs("attention_f32", 5, ints4, f1, 0, 4, 8), Error);  // 4 heads, 3 kv heads
  const int64_t ok[] = {4, 2, 16, 32};
  EXPECT_THROW(builtin_needs("attention_f32", 5, ok, f1, 0, 3, 8), Error);  // tasks not a multiple of H
  EXPECT_THROW(builtin_needs("attention_f32", 4, ok, f1, 0, 4, 8), Error);  // a buffer missing
  EXPECT_THROW(builtin_needs("attention_f32", 5, ok, {}, 0, 4, 8), Error);  // scale missing
  BuiltinNeeds n = builtin_needs("attention_f16", 5, ok, f1, 0, 4, 8);
  EXPECT_EQ(n.buf_bytes[1], uint64_t(32 * 2 * 16 * 2));
  EXPECT_EQ(n.buf_bytes[0], uint64_t(8 * 4 * 16 * 4));
  EXPECT_EQ(n.scratch_bytes, attention_scratch_bytes(32, 16));
  const int64_t rope[] = {2, 8, 5, 0};
  const float rf[] = {10000.0f, 1.0f};
  EXPECT_THROW(builtin_needs("rope_f32", 3, rope, rf, 0, 1, 8), Error);  // odd n_dims
  const int64_t neg[] = {-1, 0};
  EXPECT_THROW(builtin_needs("add_f32", 3, neg, {}, 0, 1, 8), Error);
  EXPECT_THROW(builtin_needs("no_such_kernel", 0, {}, {}, 0, 1, 8), Error);
}

}  // namespace
}  // namespace nibble::rt
