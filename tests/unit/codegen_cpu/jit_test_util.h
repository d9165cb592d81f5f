// Helpers of the CPU JIT tests: data, reference products, kernel calls, and one JIT per target CPU
// holding every kernel the tests use (compiled once, in one module).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "codegen/cpu/cpu_jit.h"
#include "ir/dtype.h"
#include "ir/formats/vec_dot.h"
#include "runtime/cpu/kernel_abi.h"

namespace nibble::test {

inline std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Rows of n f32 values encoded as `t` with the reference quantizer.
inline std::vector<uint8_t> encode_rows(DType t, const std::vector<float>& x, int64_t rows, int64_t n) {
  const int64_t rb = row_bytes(t, n);
  std::vector<uint8_t> q(static_cast<size_t>(rows * rb));
  for (int64_t r = 0; r < rows; ++r) dtype_info(t).quantize_row(x.data() + r * n, q.data() + r * rb, n);
  return q;
}

inline std::vector<float> decode_rows(DType t, const uint8_t* q, int64_t rows, int64_t n) {
  const int64_t rb = row_bytes(t, n);
  std::vector<float> y(static_cast<size_t>(rows * n));
  for (int64_t r = 0; r < rows; ++r) dtype_info(t).dequantize_row(q + r * rb, y.data() + r * n, n);
  return y;
}

inline bool is_float_type(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }
inline DType act_type(DType w) { return is_float_type(w) ? DType::F32 : dtype_info(w).vec_dot_type; }

// Calls a kernel over tasks [0, n_tasks) in `parts` contiguous slices (as the runtime's threads do),
// with `scratch_bytes` of 64-byte aligned scratch (exactly that much: ASan sees an overrun).
inline void run_kernel(NibbleKernelFn fn, const std::vector<void*>& bufs, const std::vector<int64_t>& ints,
                       int64_t n_tokens, int64_t n_tasks, int parts = 3, uint64_t scratch_bytes = 0) {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> scratch(scratch_bytes ? std::aligned_alloc(64, (scratch_bytes + 63) / 64 * 64) : nullptr);
  NibbleKernelArgs args{bufs.data(), ints.data(), nullptr, n_tokens, scratch.get()};
  for (int p = 0; p < parts; ++p) {
    const int64_t b = n_tasks * p / parts, e = n_tasks * (p + 1) / parts;
    if (b < e) fn(&args, b, e);
  }
}

// The tests' disk cache: ctest runs every test in its own process, and each would otherwise compile
// the whole kernel set of its cpu again. Keyed by the generator's source hash, so never stale.
// NIBBLE_JIT_TEST_CACHE=<dir> moves it, =off disables it.
inline std::string test_cache_dir() {
  const char* e = std::getenv("NIBBLE_JIT_TEST_CACHE");
  if (e && std::string(e) == "off") return "";
  if (e && *e) return e;
  return (std::filesystem::temp_directory_path() / "nibble-jit-test-cache").string();
}

// One JIT per target cpu ("" = host) with all requested kernels compiled together on first use.
class JitPool {
 public:
  static JitPool& get() {
    static JitPool pool;
    return pool;
  }
  struct Entry {
    std::unique_ptr<cpu::CpuJit> jit;
    bool compiled = false;
  };
  // Registers kernels for a cpu before its first compile; returns the JIT.
  cpu::CpuJit& jit(const std::string& cpu) {
    Entry& e = entries_[cpu];
    if (!e.jit) {
      cpu::CpuJit::Options o;
      o.cpu = cpu;
      o.cache_dir = test_cache_dir();
      e.jit = std::make_unique<cpu::CpuJit>(o);
    }
    return *e.jit;
  }
  NibbleKernelFn fn(const std::string& cpu, const std::string& symbol) {
    Entry& e = entries_[cpu];
    if (!e.compiled) {
      e.jit->compile();
      e.compiled = true;
      if (std::getenv("NIBBLE_JIT_STATS")) {
        const cpu::JitStats s = e.jit->stats();
        std::fprintf(stderr, "[jit %s] %d kernels: emit %.0f ms, O3 %.0f ms, codegen %.0f ms\n",
                     cpu.empty() ? "host" : cpu.c_str(), s.kernels, s.emit_ms, s.optimize_ms, s.codegen_ms);
      }
    }
    return e.jit->lookup(symbol);
  }

 private:
  std::map<std::string, Entry> entries_;
};

}  // namespace nibble::test
