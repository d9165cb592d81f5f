// Shared helpers of the runtime_cpu tests: random data, normalized error, and running a kernel
// across a thread pool the way the executor does (per-thread args, per-thread scratch).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "runtime/cpu/kernel_abi.h"
#include "runtime/cpu/thread_pool.h"

namespace nibble::rt::test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

inline std::vector<float> nan_filled(size_t n) { return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()); }

// ||got - want|| / ||want|| over elements where want is finite; an element whose finiteness differs
// (e.g. an unwritten NaN) makes it infinite.
template <typename W>
double normalized_error(const std::vector<float>& got, const std::vector<W>& want) {
  EXPECT_EQ(got.size(), want.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    const double w = double(want[i]), g = double(got[i]);
    if (std::isnan(w) != std::isnan(g) || std::isinf(w) != std::isinf(g)) return INFINITY;
    if (!std::isfinite(w)) {
      if (std::isinf(w) && w != g) return INFINITY;
      continue;
    }
    num += (g - w) * (g - w);
    den += w * w;
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

struct Call {
  std::vector<void*> bufs;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  int64_t n_tokens = 0;
  size_t scratch_bytes = 0;
};

// Runs fn over [0, n_tasks) on `threads` threads, as the executor does.
inline void run_kernel(NibbleKernelFn fn, const Call& c, int64_t n_tasks, int threads) {
  ASSERT_NE(fn, nullptr);
  ThreadPool pool(threads);
  std::vector<std::vector<float>> scratch(static_cast<size_t>(threads));
  std::vector<NibbleKernelArgs> args(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    scratch[t].assign(c.scratch_bytes / 4 + 16, std::numeric_limits<float>::quiet_NaN());
    args[t] = {c.bufs.data(), c.ints.data(), c.floats.data(), c.n_tokens,
               c.scratch_bytes ? scratch[t].data() : nullptr};
  }
  pool.parallel_for(n_tasks, [&](int64_t b, int64_t e, int t) { fn(&args[t], b, e); });
}

}  // namespace nibble::rt::test
