// A persistent pool: N-1 worker threads plus the calling thread. parallel_for splits [0, n_tasks)
// into contiguous ranges, one per thread; workers spin briefly between dispatches, then sleep.
// A dispatch allocates nothing. One caller at a time (no nesting, no concurrent parallel_for).
#pragma once
#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

namespace nibble::rt {

class ThreadPool {
 public:
  // threads: total threads including the caller; <= 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) once per thread whose range is non-empty; thread 0 is the
  // caller. Returns when all ranges are done. fn must not throw.
  template <typename F>
  void parallel_for(int64_t n_tasks, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run(n_tasks, [](void* ctx, int64_t b, int64_t e, int t) { (*static_cast<Fn*>(ctx))(b, e, t); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

  using RangeFn = void (*)(void* ctx, int64_t begin, int64_t end, int thread_index);
  void run(int64_t n_tasks, RangeFn fn, void* ctx);

  // Busy-wait iterations (a CPU pause, from the 1024th on a yield every 16th) before a waiting
  // thread sleeps on a futex. The default, 16384, is ~0.5-1 ms: workers stay hot through a decode
  // step and go to sleep between requests.
  void set_spin_iterations(int64_t n) { spin_.store(n, std::memory_order_relaxed); }

  // The range of thread t among `used` threads: contiguous, sizes differ by at most one.
  static void range_of(int64_t n_tasks, int used, int t, int64_t& begin, int64_t& end) {
    begin = n_tasks * t / used;
    end = n_tasks * (t + 1) / used;
  }

 private:
  void worker(int index);

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  std::atomic<int64_t> spin_{1 << 14};

  // The published job: written by the caller before bumping generation_, read by workers after.
  RangeFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_tasks_ = 0;
  int used_ = 0;
  bool stop_ = false;

  // Each on its own cache line: workers poll generation_ while the caller polls pending_.
  alignas(64) std::atomic<uint32_t> generation_{0};
  alignas(64) std::atomic<int32_t> sleeping_workers_{0};
  alignas(64) std::atomic<int32_t> pending_{0};
  alignas(64) std::atomic<int32_t> caller_sleeping_{0};
};

}  // namespace nibble::rt
