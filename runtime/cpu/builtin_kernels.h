// The built-in CPU kernels: format-agnostic f32 ops with the argument conventions of
// docs/cpu-backend.md ("Built-in kernels"). All follow kernel_abi.h: no allocation, no throw.
//
// Scratch: attention_f16/f32 need attention_scratch_bytes(n_ctx, head_dim) bytes of per-thread
// scratch, 64-byte aligned (scores for every cache row, the rounded query, an accumulator row).
// No other built-in uses scratch.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/cpu/kernel_abi.h"

namespace nibble::rt {

// The kernel for a built-in symbol, or nullptr.
NibbleKernelFn find_builtin_kernel(std::string_view symbol);

// All built-in symbols (for listings and tests).
std::span<const std::string_view> builtin_kernel_names();

// Per-thread scratch of attention: (n_ctx + 4 * head_dim + 64) floats; the same bound
// codegen/plan sizes plan.scratch_bytes with.
constexpr uint64_t attention_scratch_bytes(int64_t n_ctx, int64_t head_dim) {
  return uint64_t(n_ctx + 4 * head_dim + 64) * 4;
}

// What a built-in step needs, so a bad plan is an error at load rather than a crash at run time.
struct BuiltinNeeds {
  std::vector<uint64_t> buf_bytes;  // bytes each operand is read/written at n_tasks tasks
  std::vector<bool> nullable;       // operands that may be Null
  uint64_t scratch_bytes = 0;       // per thread
  int64_t n_ctx = 0;                // kv_write/attention: positions must stay below it
};

// Checks a built-in step's parameter counts and values, for every call of 1..max_tokens tokens
// (n_tasks = tasks + tasks_per_token * n), and returns what its operands need at max_tokens;
// throws nibble::Error naming the problem. Unknown symbols: nibble::Error.
BuiltinNeeds builtin_needs(std::string_view symbol, size_t n_bufs, std::span<const int64_t> ints,
                           std::span<const float> floats, int64_t tasks, int64_t tasks_per_token,
                           int64_t max_tokens);

namespace kern {
// Exposed for direct calls from tests and benchmarks; prefer find_builtin_kernel.
void add_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te);
void mul_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te);
void swiglu_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te);
void silu_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te);
void gelu_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te);
void copy_bytes(const NibbleKernelArgs* a, int64_t tb, int64_t te);
void argmax_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te);
void rms_norm_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te);
void layer_norm_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te);
void softmax_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te);
void rope_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te);
void kv_write_f16(const NibbleKernelArgs* a, int64_t tb, int64_t te);
void kv_write_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te);
void attention_f16(const NibbleKernelArgs* a, int64_t tb, int64_t te);
void attention_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te);
}  // namespace kern

}  // namespace nibble::rt
