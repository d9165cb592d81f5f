// Differential tests of the JIT qmatmul kernels against ir/formats' reference dot products, for
// every weight format x {gemv, gemm} x layouts x schedules x target ISAs (host, AVX2, SSE2 generic).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <tuple>

#include <fmt/format.h>

#include "codegen/cpu/cpu_jit.h"
#include "jit_test_util.h"
#include "support/error.h"

namespace nibble::test {
namespace {

using cpu::QMatmulKernel;

const std::vector<DType>& weight_types() {
  static const std::vector<DType> t = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                                       DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K,
                                       DType::F16,  DType::BF16, DType::F32};
  return t;
}

struct MmCase {
  QMatmulKernel k;
  std::vector<int64_t> Ns, Ks, Ms;
};

QMatmulKernel kernel(DType w, const std::string& layout, int rpt, bool gemm, int m_tile, int vbits, int unroll,
                     bool bias = false, bool res = false) {
  QMatmulKernel k;
  k.weight = w;
  k.act = act_type(w);
  k.layout = layout;
  k.sched.rows_per_task = rpt;
  k.sched.gemm = gemm;
  k.sched.m_tile = m_tile;
  k.sched.vector_bits = vbits;
  k.sched.k_unroll = unroll;
  k.bias = bias;
  k.residual = res;
  return k;
}

// The kernels and shapes tested on a cpu ("" = host: the full matrix; named cpus: their paths).
std::vector<MmCase> cases_for(const std::string& cpu, DType w) {
  const int64_t be = dtype_info(w).block_size;
  const bool quant = !is_float_type(w);
  const int64_t kb = quant ? be : 16;  // float weights: K = 16, 51 exercise the vector loop and its tail
  const std::vector<int64_t> small_k = {kb, 3 * kb + (quant ? 0 : 3)};
  const std::string gl = quant ? "rows_x4" : "rows";
  std::vector<MmCase> c;
  if (cpu == "skylake-avx512" || cpu == "alderlake") {
    c.push_back({kernel(w, gl, 16, false, 4, 512, 2), {13, 67}, small_k, {1}});
    c.push_back({kernel(w, gl, 16, true, 4, 512, 1), {13, 67}, small_k, {7}});
    return c;
  }
  // GEMV, M = 1 and 3, N not a multiple of rows_per_task; one K = 4096 case.
  c.push_back({kernel(w, gl, 16, false, 4, 512, 2), {1, 13, 67, 259}, small_k, {1, 3}});
  c.push_back({kernel(w, "rows", 16, false, 4, 512, 1), {67}, {4096}, {1}});
  // GEMM, rows_per_task not a multiple of the tile's rows.
  c.push_back({kernel(w, "rows", 5, true, 3, 512, 1), {13, 67}, small_k, {3, 7}});
  if (!cpu.empty()) return c;
  c.push_back({kernel(w, "rows", 16, false, 4, 256, 1), {1, 13, 67, 259}, small_k, {1, 3}});
  c.push_back({kernel(w, "rows", 4, false, 4, 256, 3, true, true), {13, 67}, small_k, {1, 2}});
  c.push_back({kernel(w, "rows", 16, true, 8, 256, 1, true, true), {67}, small_k, {7, 64}});
  c.push_back({kernel(w, "rows", 16, true, 4, 512, 2, true, false), {259}, {3 * kb}, {64}});
  if (quant) {
    c.push_back({kernel(w, "rows_x4", 16, true, 4, 512, 1), {13, 67, 259}, small_k, {3, 7, 64}});
    c.push_back({kernel(w, "rows_x8", 8, false, 4, 256, 1, false, true), {13, 67, 259}, small_k, {1}});
    c.push_back({kernel(w, "rows_x8", 12, true, 4, 512, 1, true, false), {13, 67}, small_k, {7}});
    c.push_back({kernel(w, "rows_x16", 32, true, 16, 512, 1), {67, 259}, small_k, {9, 37, 64}});
    // More tokens than one chunk of the 16-row path (two chunks of 67), leftovers of 4 and 1.
    c.push_back({kernel(w, "rows_x4", 32, true, 8, 512, 1), {35}, {small_k.back()}, {134, 13}});
    c.push_back({kernel(w, "rows_x2", 16, false, 4, 256, 1), {13}, small_k, {1}});
    c.push_back({kernel(w, "rows_x16", 48, false, 4, 512, 1), {13, 67, 259}, small_k, {1}});
  }
  return c;
}

const std::vector<std::string>& test_cpus() {
  static const std::vector<std::string> cpus = [] {
    std::vector<std::string> v = {"", "x86-64-v3", "x86-64"};
    const cpu::HostCpu h = cpu::detect_host();
    if (h.avx512bw && h.avx512vl) v.push_back("skylake-avx512");  // AVX-512 without VNNI
    if (h.avxvnni) v.push_back("alderlake");                        // AVX-VNNI without AVX-512
    return v;
  }();
  return cpus;
}

bool x86_host() { return cpu::detect_host().triple.find("x86_64") != std::string::npos; }

// Requests every kernel of every cpu before the first compile.
void request_all(const std::string& cpu) {
  static std::map<std::string, bool> done;
  if (done[cpu]) return;
  done[cpu] = true;
  cpu::CpuJit& jit = JitPool::get().jit(cpu);
  for (DType w : weight_types())
    for (const MmCase& c : cases_for(cpu, w)) jit.request_qmatmul(c.k);
  for (DType a : {DType::Q8_0, DType::Q8_1, DType::Q8_K}) jit.request_quantize(a);
}

struct Problem {
  int64_t N, K, M;
  std::vector<uint8_t> w;     // GGUF rows
  std::vector<float> wf;      // decoded weights
  std::vector<uint8_t> a;     // activation rows (blocks, or f32 bytes)
  std::vector<float> af;      // decoded activations
  std::vector<float> bias, res;
};

Problem make_problem(DType w, int64_t N, int64_t K, int64_t M, uint32_t seed) {
  Problem p{N, K, M, {}, {}, {}, {}, {}, {}};
  std::vector<float> wx = gaussian(size_t(N * K), seed);
  // Per-row scale variety, plus an outlier, so block scales differ.
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) wx[size_t(n * K + k)] *= 0.5f + float((n * 7 + k / 32) % 5) * 0.3f;
  p.w = encode_rows(w, wx, N, K);
  p.wf = decode_rows(w, p.w.data(), N, K);
  const DType at = act_type(w);
  std::vector<float> ax = gaussian(size_t(M * K), seed + 1000);
  if (at == DType::F32) {
    p.af = ax;
    p.a.resize(ax.size() * 4);
    std::memcpy(p.a.data(), ax.data(), p.a.size());
  } else {
    p.a = encode_rows(at, ax, M, K);
    p.af = decode_rows(at, p.a.data(), M, K);
  }
  p.bias = gaussian(size_t(N), seed + 2000);
  p.res = gaussian(size_t(M * N), seed + 3000);
  return p;
}

// A problem with its reference products (without epilogue) and their normalizers, shared by every
// kernel and cpu that runs it.
struct Solved {
  Problem p;
  std::vector<double> ref, norm;
};

const Solved& solved(DType w, int64_t N, int64_t K, int64_t M) {
  static std::map<std::tuple<int, int64_t, int64_t, int64_t>, std::unique_ptr<Solved>> cache;
  auto& slot = cache[{int(w), N, K, M}];
  if (slot) return *slot;
  slot = std::make_unique<Solved>();
  Solved& s = *slot;
  s.p = make_problem(w, N, K, M, uint32_t(N * 131 + K * 7 + M * 3 + int(w) * 1009));
  const Problem& p = s.p;
  const DType at = act_type(w);
  const int64_t wrb = row_bytes(w, K), arb = row_bytes(at, K);
  s.ref.resize(size_t(M * N));
  s.norm.resize(size_t(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double ref = 0, norm = 0;
      for (int64_t i = 0; i < K; ++i) {
        const double prod = double(p.wf[size_t(n * K + i)]) * p.af[size_t(m * K + i)];
        norm += std::fabs(prod);
        ref += prod;
      }
      if (!is_float_type(w)) ref = vec_dot(w, p.w.data() + n * wrb, p.a.data() + m * arb, K);
      s.ref[size_t(m * N + n)] = ref;
      s.norm[size_t(m * N + n)] = norm;
    }
  return s;
}

void check_case(const std::string& cpu, const QMatmulKernel& k, int64_t N, int64_t K, int64_t M, bool m_from_tokens) {
  SCOPED_TRACE(fmt::format("cpu '{}' kernel {} N={} K={} M={}", cpu, k.symbol(), N, K, M));
  const Solved& sv = solved(k.weight, N, K, M);
  const Problem& p = sv.p;
  std::vector<uint8_t> wl = cpu::repack_weight(k.weight, k.layout, p.w.data(), N, K);
  std::vector<float> out(size_t(M * N), std::numeric_limits<float>::quiet_NaN());
  std::vector<void*> bufs = {wl.data(), const_cast<uint8_t*>(p.a.data()), out.data()};
  if (k.bias) bufs.push_back(const_cast<float*>(p.bias.data()));
  if (k.residual) bufs.push_back(const_cast<float*>(p.res.data()));
  NibbleKernelFn fn = JitPool::get().fn(cpu, k.symbol());
  const int64_t tasks = (N + k.sched.rows_per_task - 1) / k.sched.rows_per_task;
  run_kernel(fn, bufs, {N, K, m_from_tokens ? 0 : M}, m_from_tokens ? M : 999, tasks, 3, cpu::qmatmul_scratch_bytes(k, K));

  int bad = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double ref = sv.ref[size_t(m * N + n)];
      const double norm = sv.norm[size_t(m * N + n)];
      double extra = 0;
      if (k.bias) ref += p.bias[size_t(n)], extra += std::fabs(p.bias[size_t(n)]);
      if (k.residual) ref += p.res[size_t(m * N + n)], extra += std::fabs(p.res[size_t(m * N + n)]);
      const float got = out[size_t(m * N + n)];
      const double err = std::fabs(double(got) - ref) / std::max(norm + extra, 1e-20);
      if (!(err < 1e-5) && bad++ < 5)
        ADD_FAILURE() << fmt::format("out[{}, {}] = {} want {} (normalized error {:.3g})", m, n, got, ref, err);
    }
  EXPECT_EQ(bad, 0);
}

class QMatmul : public ::testing::TestWithParam<std::tuple<std::string, DType>> {};

TEST_P(QMatmul, MatchesReference) {
  const auto& [cpu, w] = GetParam();
  if (!cpu.empty() && !x86_host()) GTEST_SKIP() << "named x86 cpus need an x86 host";
  request_all(cpu);
  for (const MmCase& c : cases_for(cpu, w))
    for (int64_t N : c.Ns)
      for (int64_t K : c.Ks)
        for (int64_t M : c.Ms) check_case(cpu, c.k, N, K, M, M % 2 == 1);
}

std::string param_name(const ::testing::TestParamInfo<QMatmul::ParamType>& info) {
  std::string cpu = std::get<0>(info.param).empty() ? "host" : std::get<0>(info.param);
  for (char& ch : cpu)
    if (ch == '-') ch = '_';
  return cpu + "_" + dtype_name(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllFormats, QMatmul,
                         ::testing::Combine(::testing::ValuesIn(test_cpus()), ::testing::ValuesIn(weight_types())),
                         param_name);

TEST(QMatmulApi, RejectsBadRequests) {
  cpu::CpuJit& jit = JitPool::get().jit("");
  QMatmulKernel k = kernel(DType::Q4_0, "rows", 16, false, 4, 256, 1);
  k.act = DType::Q8_K;
  EXPECT_THROW(jit.request_qmatmul(k), Error);
  k = kernel(DType::F16, "rows_x4", 16, false, 4, 256, 1);
  EXPECT_THROW(jit.request_qmatmul(k), Error);
  k = kernel(DType::Q4_K, "rows_x3", 16, false, 4, 256, 1);
  EXPECT_THROW(jit.request_qmatmul(k), Error);
  EXPECT_THROW(jit.request_quantize(DType::Q4_0), Error);
  EXPECT_THROW(jit.request_get_rows(DType::I32), Error);
  EXPECT_THROW(jit.lookup("no_such_kernel"), Error);
}

TEST(QMatmulApi, SymbolsAreDistinct) {
  QMatmulKernel a = kernel(DType::Q4_K, "rows", 16, false, 4, 256, 1);
  QMatmulKernel b = a;
  b.sched.gemm = true;
  QMatmulKernel c = a;
  c.bias = true;
  QMatmulKernel d = a;
  d.layout = "rows_x4";
  EXPECT_NE(a.symbol(), b.symbol());
  EXPECT_NE(a.symbol(), c.symbol());
  EXPECT_NE(a.symbol(), d.symbol());
  QMatmulKernel e = a;
  e.sched.m_tile = 8;  // irrelevant to gemv
  EXPECT_EQ(a.symbol(), e.symbol());
}

TEST(Layouts, RepackRoundTrips) {
  for (DType t : {DType::Q4_0, DType::Q6_K}) {
    for (const char* layout : {"rows", "rows_x2", "rows_x4", "rows_x8", "rows_x16"}) {
      for (int64_t N : {1, 5, 16, 67}) {
        const int64_t K = 3 * dtype_info(t).block_size;
        std::vector<uint8_t> w(size_t(N * row_bytes(t, K)));
        for (size_t i = 0; i < w.size(); ++i) w[i] = uint8_t(i * 2654435761u >> 13);
        auto r = cpu::repack_weight(t, layout, w.data(), N, K);
        ASSERT_EQ(r.size(), w.size());
        EXPECT_EQ(cpu::unpack_weight(t, layout, r.data(), N, K), w) << layout << " N=" << N;
      }
    }
  }
  // Block j of the 4 rows of a group lie together.
  const DType t = DType::Q8_0;
  const int64_t N = 8, K = 64, bpb = 34;
  std::vector<uint8_t> w(size_t(N * row_bytes(t, K)));
  for (size_t i = 0; i < w.size(); ++i) w[i] = uint8_t(i / size_t(bpb));  // block id
  auto r = cpu::repack_weight(t, "rows_x4", w.data(), N, K);
  // Group 0: rows 0..3, blocks (row, j) = row * 2 + j. Interleaved: (0,0) (1,0) (2,0) (3,0) (0,1) ...
  const int expect[] = {0, 2, 4, 6, 1, 3, 5, 7};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(r[size_t(i * bpb)], expect[i]) << i;
  EXPECT_TRUE(cpu::layout_supported(DType::Q4_K, "rows_x16"));
  EXPECT_FALSE(cpu::layout_supported(DType::F32, "rows_x4"));
  EXPECT_FALSE(cpu::layout_supported(DType::Q4_K, "cols"));
}

}  // namespace
}  // namespace nibble::test
