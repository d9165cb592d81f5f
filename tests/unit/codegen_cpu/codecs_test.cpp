// The JIT's activation quantizers and row decoders are bit-exact with ir/formats on every target;
// host detection; the disk cache.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <limits>

#include <fmt/format.h>

#include "codegen/cpu/cpu_jit.h"
#include "jit_test_util.h"
#include "support/error.h"

namespace nibble::test {
namespace {

const std::vector<std::string>& cpus() {
  static const std::vector<std::string> v = {"", "x86-64-v3", "x86-64"};
  return v;
}

bool x86_host() { return cpu::detect_host().triple.find("x86_64") != std::string::npos; }

const std::vector<DType>& table_types() {
  static const std::vector<DType> t = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                                       DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q8_1, DType::Q2_K,
                                       DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K};
  return t;
}

// A separate JIT per cpu for the codecs (its own module).
cpu::CpuJit& codec_jit(const std::string& cpu) {
  static std::map<std::string, std::unique_ptr<cpu::CpuJit>> jits;
  auto& j = jits[cpu];
  if (!j) {
    cpu::CpuJit::Options o;
    o.cpu = cpu;
    o.cache_dir = test_cache_dir();
    j = std::make_unique<cpu::CpuJit>(o);
    for (DType a : {DType::Q8_0, DType::Q8_1, DType::Q8_K, DType::F16, DType::BF16}) j->request_quantize(a);
    for (DType t : table_types()) j->request_get_rows(t);
    j->compile();
  }
  return *j;
}

// Rows with awkward content: zero blocks, ties between +max and -max, tiny and huge values.
std::vector<float> tricky_rows(int64_t M, int64_t K, uint32_t seed) {
  std::vector<float> x = gaussian(size_t(M * K), seed);
  for (int64_t m = 0; m < M; ++m) {
    float* r = x.data() + m * K;
    if (m % 5 == 1)
      for (int64_t k = 0; k < std::min<int64_t>(K, 256); ++k) r[k] = 0.0f;  // an all-zero block
    if (m % 5 == 2 && K > 40) {
      r[3] = -7.5f;  // tie of magnitudes: the first one decides the sign of q8_K's scale
      r[40] = 7.5f;
    }
    if (m % 5 == 3)
      for (int64_t k = 0; k < K; ++k) r[k] *= 1e-6f;
    if (m % 5 == 4)
      for (int64_t k = 0; k < K; ++k) r[k] = float(k % 7) - 3.0f;
    if (m == 5) {  // scale 1 (amax 127): levels at exact halves, where the rounding rule shows
      for (int64_t k = 0; k < K; ++k) r[k] = float(k % 9) - 4.5f;
      for (int64_t k = 0; k < K; k += 32) r[k] = 127.0f;
    }
  }
  return x;
}

class Quantize : public ::testing::TestWithParam<std::tuple<std::string, DType>> {};

TEST_P(Quantize, BitExact) {
  const auto& [cpu, act] = GetParam();
  if (!cpu.empty() && !x86_host()) GTEST_SKIP();
  NibbleKernelFn fn = codec_jit(cpu).lookup(std::string("quantize_") + dtype_name(act));
  const bool half = act == DType::F16 || act == DType::BF16;
  for (int64_t K : {int64_t(256), int64_t(512), int64_t(4096), half ? int64_t(13) : int64_t(256 * 3)}) {
    const int64_t M = 10;
    std::vector<float> x = tricky_rows(M, K, uint32_t(K));
    if (half) {  // values that round up, down and to even; overflow, subnormals, signed zero, NaN
      const float special[] = {65504.0f, 65520.0f, 1e-7f, -0.0f, std::numeric_limits<float>::quiet_NaN(),
                               1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 3.0e38f};
      for (size_t i = 0; i < std::size(special); ++i) x[size_t(i * 3)] = special[i];
    }
    // What ggml's CPU matmul quantizes activations to (127 / amax, half to even for q8_0 / q8_1).
    const int64_t rb = row_bytes(act, K);
    std::vector<uint8_t> want(size_t(M * rb));
    for (int64_t r = 0; r < M; ++r) activation_quantize_row(act)(x.data() + r * K, want.data() + r * rb, K);
    std::vector<uint8_t> got(want.size(), 0xCD);
    run_kernel(fn, {x.data(), got.data()}, {K}, 1, M, 2);
    ASSERT_EQ(got.size(), want.size());
    size_t first = got.size();
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i] != want[i]) {
        first = i;
        break;
      }
    EXPECT_EQ(first, got.size()) << "K=" << K << ": first differing byte " << first << " (block "
                                 << first / size_t(dtype_info(act).bytes_per_block) << ")";
  }
}

class GetRows : public ::testing::TestWithParam<std::tuple<std::string, DType>> {};

TEST_P(GetRows, BitExact) {
  const auto& [cpu, t] = GetParam();
  if (!cpu.empty() && !x86_host()) GTEST_SKIP();
  NibbleKernelFn fn = codec_jit(cpu).lookup(std::string("get_rows_") + dtype_name(t));
  const int64_t be = dtype_info(t).block_size;
  for (int64_t D : {be, be * 3 + (be == 1 ? 4 : 0), (be == 1 ? int64_t(13) : int64_t(512))}) {
    if (D % be) continue;
    const int64_t V = 11;
    std::vector<uint8_t> table = encode_rows(t, tricky_rows(V, D, uint32_t(D + 5)), V, D);
    const std::vector<int32_t> ids = {3, 0, 10, 3, 7, 1, 9};
    std::vector<float> out(ids.size() * size_t(D), std::numeric_limits<float>::quiet_NaN());
    run_kernel(fn, {table.data(), const_cast<int32_t*>(ids.data()), out.data()}, {D}, int64_t(ids.size()),
               int64_t(ids.size()), 2);
    std::vector<float> all = decode_rows(t, table.data(), V, D);
    for (size_t i = 0; i < ids.size(); ++i)
      for (int64_t e = 0; e < D; ++e) {
        const float want = all[size_t(ids[i] * D + e)], got = out[i * size_t(D) + size_t(e)];
        ASSERT_EQ(std::memcmp(&want, &got, 4), 0) << "D=" << D << " token " << i << " elem " << e << ": " << got
                                                  << " want " << want;
      }
  }
}

std::string name_of(const std::string& cpu, DType t) {
  std::string c = cpu.empty() ? "host" : cpu;
  for (char& ch : c)
    if (ch == '-') ch = '_';
  return c + "_" + dtype_name(t);
}

INSTANTIATE_TEST_SUITE_P(Acts, Quantize,
                         ::testing::Combine(::testing::ValuesIn(cpus()),
                                            ::testing::Values(DType::Q8_0, DType::Q8_1, DType::Q8_K, DType::F16, DType::BF16)),
                         [](const auto& info) { return name_of(std::get<0>(info.param), std::get<1>(info.param)); });
INSTANTIATE_TEST_SUITE_P(Tables, GetRows,
                         ::testing::Combine(::testing::ValuesIn(cpus()), ::testing::ValuesIn(table_types())),
                         [](const auto& info) { return name_of(std::get<0>(info.param), std::get<1>(info.param)); });

TEST(HostCpu, DetectsTheHost) {
  cpu::HostCpu h = cpu::detect_host();
  EXPECT_FALSE(h.name.empty());
  EXPECT_FALSE(h.triple.empty());
  EXPECT_TRUE(h.vector_bits() == 128 || h.vector_bits() == 256 || h.vector_bits() == 512);
  if (h.avx512vnni) {
    EXPECT_TRUE(h.feature_set().count("avx512vnni"));
  }
  if (!x86_host()) return;
  cpu::CpuJit v3({"", "x86-64-v3"});
  EXPECT_TRUE(v3.target().avx2);
  EXPECT_TRUE(v3.target().fma);
  EXPECT_FALSE(v3.target().avx512f);
  EXPECT_EQ(v3.target().vector_bits(), 256);
  cpu::CpuJit base({"", "x86-64"});
  EXPECT_FALSE(base.target().avx2);
  EXPECT_EQ(base.target().vector_bits(), 128);
  EXPECT_THROW(cpu::CpuJit({"", "no-such-cpu"}), Error);
}

TEST(DiskCache, SecondJitHitsTheCache) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() /
                       fmt::format("nibble_jit_cache_{}_{}", ::getpid(), std::chrono::steady_clock::now().time_since_epoch().count());
  fs::remove_all(dir);
  cpu::QMatmulKernel k;
  k.weight = DType::Q4_0;
  k.act = DType::Q8_0;
  const int64_t N = 9, K = 64, M = 2;
  std::vector<uint8_t> w = encode_rows(DType::Q4_0, gaussian(size_t(N * K), 1), N, K);
  std::vector<uint8_t> a = encode_rows(DType::Q8_0, gaussian(size_t(M * K), 2), M, K);
  std::vector<float> out1(size_t(M * N)), out2(size_t(M * N));
  for (int round = 0; round < 2; ++round) {
    cpu::CpuJit jit({dir.string(), ""});
    const std::string s = jit.request_qmatmul(k);
    jit.request_quantize(DType::Q8_0);
    jit.compile();
    const cpu::JitStats st = jit.stats();
    EXPECT_EQ(st.kernels, 2);
    EXPECT_EQ(st.cache_hits, round == 0 ? 0 : 2);
    std::vector<float>& out = round == 0 ? out1 : out2;
    run_kernel(jit.lookup(s), {w.data(), a.data(), out.data()}, {N, K, M}, 1, (N + 15) / 16, 1);
  }
  EXPECT_EQ(out1, out2);
  // Entries are per weight format: adding a q6_k kernel reuses the q4_0 and codec modules.
  {
    cpu::CpuJit jit({dir.string(), ""});
    jit.request_qmatmul(k);
    jit.request_quantize(DType::Q8_0);
    cpu::QMatmulKernel k6;
    k6.weight = DType::Q6_K;
    k6.act = DType::Q8_K;
    jit.request_qmatmul(k6);
    jit.compile();
    EXPECT_EQ(jit.stats().kernels, 3);
    EXPECT_EQ(jit.stats().cache_hits, 2);
  }
  // A damaged cache entry is rebuilt, not trusted.
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".o") {
      std::ofstream(e.path(), std::ios::binary | std::ios::trunc) << "not an object file";
    }
  {
    cpu::CpuJit jit({dir.string(), ""});
    const std::string s = jit.request_qmatmul(k);
    jit.request_quantize(DType::Q8_0);
    jit.compile();
    EXPECT_EQ(jit.stats().cache_hits, 0);
    std::vector<float> out3(size_t(M * N));
    run_kernel(jit.lookup(s), {w.data(), a.data(), out3.data()}, {N, K, M}, 1, (N + 15) / 16, 1);
    EXPECT_EQ(out3, out1);
  }
  // A different cpu or kernel set is a different entry.
  cpu::CpuJit other({dir.string(), x86_host() ? "x86-64" : ""});
  other.request_qmatmul(k);
  other.request_quantize(DType::Q8_0);
  other.compile();
  EXPECT_EQ(other.stats().cache_hits, x86_host() ? 0 : 2);
  fs::remove_all(dir);
}

TEST(CpuJit, CompilesIncrementally) {
  cpu::CpuJit jit;
  const std::string q = jit.request_quantize(DType::Q8_K);
  EXPECT_THROW(jit.lookup(q), Error);  // requested, not compiled
  jit.compile();
  EXPECT_NE(jit.lookup(q), nullptr);
  const std::string g = jit.request_get_rows(DType::Q4_K);
  EXPECT_EQ(jit.request_quantize(DType::Q8_K), q);  // already there: nothing pending
  jit.compile();
  EXPECT_NE(jit.lookup(g), nullptr);
  EXPECT_EQ(jit.stats().kernels, 2);
  EXPECT_NE(jit.dump_ir({g}, false).find("get_rows_q4_k"), std::string::npos);
}

}  // namespace
}  // namespace nibble::test
