// The executable CPU plan: what the runtime runs. It holds no IR: kernels by symbol name, steps
// with resolved buffer references and parameters, the arena size and the state buffers.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nibble::rt {

enum class BufKind : uint8_t {
  Weight,  // index: plan.weights[index]; offset into it
  Arena,   // offset into the activation arena
  State,   // index: plan.states[index] (the KV cache); offset into it
  Tokens,  // the i32 token ids of this call
  Pos,     // the i32 positions of this call
  Null,    // an absent optional operand: the kernel sees nullptr
};

struct BufRef {
  BufKind kind = BufKind::Arena;
  uint32_t index = 0;
  uint64_t offset = 0;
};

struct Step {
  std::string kernel;              // symbol: a built-in kernel or a JIT-compiled one
  // Calls of at least `batch_from_tokens` tokens run `batch_kernel` instead (GEMM vs GEMV); 0: never.
  std::string batch_kernel;
  int64_t batch_from_tokens = 0;
  std::vector<BufRef> bufs;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  // n_tasks = tasks + tasks_per_token * n_tokens.
  int64_t tasks = 0;
  int64_t tasks_per_token = 0;
  std::string label;               // for profiles: the IR op it came from
};

struct WeightBlob {
  std::string name;
  const void* data = nullptr;  // mapped or repacked bytes, owned by whoever built the plan
  uint64_t bytes = 0;
};

struct StateBuffer {
  std::string name;
  uint64_t bytes = 0;
};

struct CpuPlan {
  std::vector<Step> steps;
  std::vector<WeightBlob> weights;
  std::vector<StateBuffer> states;
  uint64_t arena_bytes = 0;
  uint64_t scratch_bytes = 0;   // per thread
  int64_t max_tokens = 0;       // the arena is sized for this many tokens per call
  int64_t n_vocab = 0;          // token ids are checked against it before running
  int64_t n_ctx = 0;            // positions are checked against it
  BufRef logits;                // f32 [n_tokens, n_vocab] after the last step
};

}  // namespace nibble::rt
