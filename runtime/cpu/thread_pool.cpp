#include "runtime/cpu/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace nibble::rt {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Busy-waits until done() or `budget` iterations pass. Pauses first; later iterations yield now
// and then, so a thread that was preempted (more threads than free cores) gets to run.
template <typename Done>
bool spin_until(Done done, int64_t budget) {
  for (int64_t i = 0; i < budget; ++i) {
    if (done()) return true;
    if (i < 1024 || i % 16 != 0) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  return done();
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = threads;
  workers_.reserve(size_t(threads - 1));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_ = true;
  generation_.fetch_add(1, std::memory_order_seq_cst);
  generation_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::run(int64_t n_tasks, RangeFn fn, void* ctx) {
  if (n_tasks <= 0) return;
  // One task or one thread: no hand-off at all (decode runs many single-row steps).
  if (n_threads_ == 1 || n_tasks == 1) {
    fn(ctx, 0, n_tasks, 0);
    return;
  }
  fn_ = fn;
  ctx_ = ctx;
  n_tasks_ = n_tasks;
  used_ = int(std::min<int64_t>(n_threads_, n_tasks));
  // Every worker acknowledges every generation (even with an empty range), so none can still be
  // reading the job fields when the next dispatch rewrites them.
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  // seq_cst pairs with the workers' sleeping_workers_ increment: either we see a sleeper and wake
  // it, or it sees the new generation before it sleeps.
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleeping_workers_.load(std::memory_order_seq_cst) > 0) generation_.notify_all();

  int64_t b, e;
  range_of(n_tasks, used_, 0, b, e);
  fn(ctx, b, e, 0);

  if (spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; }, spin_.load(std::memory_order_relaxed)))
    return;
  caller_sleeping_.store(1, std::memory_order_seq_cst);
  for (;;) {
    int32_t v = pending_.load(std::memory_order_seq_cst);
    if (v == 0) break;
    pending_.wait(v, std::memory_order_seq_cst);
  }
  caller_sleeping_.store(0, std::memory_order_relaxed);
}

void ThreadPool::worker(int index) {
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = seen;
    auto arrived = [&] { return (g = generation_.load(std::memory_order_acquire)) != seen; };
    while (!spin_until(arrived, spin_.load(std::memory_order_relaxed))) {
      sleeping_workers_.fetch_add(1, std::memory_order_seq_cst);
      generation_.wait(seen, std::memory_order_seq_cst);
      sleeping_workers_.fetch_sub(1, std::memory_order_relaxed);
    }
    seen = g;
    if (stop_) return;
    if (index < used_) {
      int64_t b, e;
      range_of(n_tasks_, used_, index, b, e);
      fn_(ctx_, b, e, index);
    }
    if (pending_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        caller_sleeping_.load(std::memory_order_seq_cst))
      pending_.notify_one();
  }
}

}  // namespace nibble::rt
