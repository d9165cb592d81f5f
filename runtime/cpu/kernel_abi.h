// The one calling convention of every CPU kernel, built-in or JIT-compiled.
//
// The runtime splits a step's tasks [0, n_tasks) across its threads; each thread calls the kernel
// once with its contiguous range. Kernels must not allocate, must not throw, and must write every
// output element their tasks own.
#pragma once
#include <cstdint>

extern "C" {

struct NibbleKernelArgs {
  void* const* bufs;    // operand pointers, resolved once at load (weights, arena, states, I/O)
  const int64_t* ints;  // static integer parameters (dims, strides, flags)
  const float* floats;  // static float parameters (eps, scales, rope base)
  int64_t n_tokens;     // the tokens of this call (binds the symbolic dim n_tokens)
  void* scratch;        // per-thread scratch (plan.scratch_bytes each), for kernels that need it
};

typedef void (*NibbleKernelFn)(const NibbleKernelArgs* args, int64_t task_begin, int64_t task_end);
}
