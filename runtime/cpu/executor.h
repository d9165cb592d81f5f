// Runs an rt::CpuPlan: everything is resolved once at construction (kernels, buffer pointers,
// per-thread kernel arguments); forward() then only checks its inputs and dispatches the steps,
// allocating nothing. Not reentrant: one forward() at a time per executor.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/cpu/kernel_abi.h"
#include "runtime/cpu/plan.h"
#include "runtime/cpu/thread_pool.h"

namespace nibble::rt {

struct StepProfile {
  std::string label;
  int64_t calls = 0;    // kernel dispatches
  double seconds = 0;   // wall time, summed
};

class CpuExecutor {
 public:
  // Returns the JIT-compiled kernel for a symbol, or nullptr.
  using JitResolver = std::function<NibbleKernelFn(const std::string& symbol)>;
  // Called by forward_chunked after each chunk with that chunk's logits [n, n_vocab].
  using ChunkFn = std::function<void(int64_t first, int64_t n, std::span<const float> logits)>;

  // Resolves each step's kernel (built-in first, then resolve_jit, which may be empty) and buffer,
  // allocates the arena, zeroed states and scratch; throws nibble::Error for a bad plan (unknown
  // kernel, buffer out of range, built-in step with inconsistent parameters). threads <= 0: all
  // hardware threads. Weight bytes stay owned by the plan's builder and must outlive this.
  CpuExecutor(const CpuPlan& plan, JitResolver resolve_jit, int threads);
  ~CpuExecutor();
  CpuExecutor(const CpuExecutor&) = delete;
  CpuExecutor& operator=(const CpuExecutor&) = delete;

  // Runs n <= max_tokens tokens at the given positions; returns the logits f32 [n, n_vocab], valid
  // until the next call. Throws nibble::Error (naming the value) when n exceeds max_tokens, a
  // token id is outside [0, n_vocab) or a position outside [0, n_ctx). No heap allocation.
  std::span<const float> forward(const int32_t* tokens, const int32_t* pos, int64_t n);

  // Any n: runs chunks of at most max_tokens, calling on_chunk (if set) after each; returns the
  // logits of the last token [n_vocab] (empty when n == 0).
  std::span<const float> forward_chunked(const int32_t* tokens, const int32_t* pos, int64_t n,
                                         const ChunkFn& on_chunk = nullptr);

  // Zeroes the state buffers (the KV cache): a new sequence.
  void reset();

  int threads() const { return pool_.size(); }
  int64_t max_tokens() const { return max_tokens_; }
  int64_t n_vocab() const { return n_vocab_; }
  int64_t n_ctx() const { return n_ctx_; }
  std::span<std::byte> state(size_t index);  // plan.states[index]'s bytes
  ThreadPool& pool() { return pool_; }

  // Tests: when on, forward() first fills the arena with 0xFF bytes (a NaN pattern in f32), so a
  // kernel reading an element no step wrote this call shows up as NaN. Allocates nothing.
  void set_poison(bool on) { poison_ = on; }
  bool poison() const { return poison_; }

  // Per-step wall time, accumulated by step label while enabled.
  void set_profiling(bool on) { profiling_ = on; }
  bool profiling() const { return profiling_; }
  std::vector<StepProfile> profile() const;  // most time first
  std::string profile_report() const;        // a table of profile(), with shares of the total
  void clear_profile();

 private:
  struct AlignedDelete {
    void operator()(std::byte* p) const;
  };
  using Block = std::unique_ptr<std::byte, AlignedDelete>;
  static Block alloc_zeroed(uint64_t bytes);

  struct StepRt {
    NibbleKernelFn fn = nullptr;
    NibbleKernelFn batch_fn = nullptr;  // used when n >= batch_from (> 0)
    int64_t batch_from = 0;
    int64_t tasks = 0, tasks_per_token = 0;
    size_t profile_slot = 0;
  };

  ThreadPool pool_;
  int64_t max_tokens_ = 0, n_vocab_ = 0, n_ctx_ = 0;
  Block arena_, tokens_, pos_, scratch_;
  std::vector<Block> states_;
  std::vector<uint64_t> state_bytes_;
  std::vector<StepRt> steps_;
  std::vector<void*> buf_ptrs_;          // every step's operands, back to back
  std::vector<int64_t> ints_;
  std::vector<float> floats_;
  std::vector<NibbleKernelArgs> args_;   // [step][thread]: scratch differs per thread
  const float* logits_ = nullptr;
  int64_t last_n_ = -1;                  // n_tokens currently in args_
  uint64_t arena_bytes_ = 0;
  bool poison_ = false;

  bool profiling_ = false;
  std::vector<std::string> profile_labels_;
  std::vector<int64_t> profile_ns_, profile_calls_;
};

}  // namespace nibble::rt
