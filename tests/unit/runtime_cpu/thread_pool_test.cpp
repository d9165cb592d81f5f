#include "runtime/cpu/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <vector>

namespace nibble::rt {
namespace {

// Each task runs exactly once, ranges are contiguous and each thread index appears at most once.
void check_dispatches(ThreadPool& pool, int dispatches) {
  for (int64_t n : {0, 1, 2, 3, 5, 7, 8, 9, 100, 1001}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    std::vector<std::atomic<int>> per_thread(static_cast<size_t>(pool.size()));
    for (int d = 0; d < dispatches; ++d) {
      for (auto& t : per_thread) t.store(0);
      pool.parallel_for(n, [&](int64_t b, int64_t e, int t) {
        ASSERT_GE(t, 0);
        ASSERT_LT(t, pool.size());
        ASSERT_LT(b, e);
        per_thread[t].fetch_add(1);
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
      for (auto& t : per_thread) ASSERT_LE(t.load(), 1);
    }
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), dispatches) << "task " << i << " of " << n;
  }
}

TEST(ThreadPool, EveryTaskRunsExactlyOnce) {
  for (int threads = 1; threads <= 8; ++threads) {
    SCOPED_TRACE(threads);
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    check_dispatches(pool, threads <= 3 ? 300 : 30);  // 8 threads on 2 cores: fewer rounds
  }
}

TEST(ThreadPool, SleepingWorkersWake) {
  // No spinning: every hand-off goes through the futex path, on both sides.
  for (int threads : {2, 3, 5}) {
    ThreadPool pool(threads);
    pool.set_spin_iterations(0);
    check_dispatches(pool, 50);
    pool.set_spin_iterations(1 << 14);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // let workers fall asleep
    check_dispatches(pool, 3);
  }
}

TEST(ThreadPool, RangesAreBalanced) {
  int64_t b, e;
  for (int64_t n : {1, 7, 64, 1000})
    for (int used = 1; used <= 8 && used <= n; ++used) {
      int64_t expect_begin = 0;
      for (int t = 0; t < used; ++t) {
        ThreadPool::range_of(n, used, t, b, e);
        EXPECT_EQ(b, expect_begin);
        EXPECT_GE(e - b, n / used);
        EXPECT_LE(e - b, n / used + 1);
        expect_begin = e;
      }
      EXPECT_EQ(expect_begin, n);
    }
}

TEST(ThreadPool, DefaultSizeIsHardware) {
  ThreadPool pool(0);
  EXPECT_GE(pool.size(), 1);
}

// The cost of one dispatch with trivial work: what ~200 steps per decoded token pay.
TEST(ThreadPool, DispatchOverhead) {
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    std::atomic<int64_t> sink{0};
    auto fn = [&](int64_t b, int64_t e, int) { sink.fetch_add(e - b, std::memory_order_relaxed); };
    for (int i = 0; i < 1000; ++i) pool.parallel_for(2, fn);  // warm up
    const int kIters = 100000;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kIters; ++i) pool.parallel_for(2, fn);
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / kIters;
    std::printf("parallel_for dispatch, %d thread(s): %.0f ns\n", threads, ns);
    EXPECT_EQ(sink.load(), int64_t(kIters + 1000) * 2);
    EXPECT_LT(ns, 200000.0);  // a sanity bound only: the machine is shared
  }
}

}  // namespace
}  // namespace nibble::rt
