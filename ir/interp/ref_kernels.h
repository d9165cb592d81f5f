// Reference kernels of the interpreter, one function per op. Each reads its operands and fills
// `out` (whose shape is already resolved).
#pragma once
#include <vector>

#include "ir/interp/interpreter.h"

namespace nibble::ref {

struct KernelArgs {
  const Op& op;
  std::vector<const RefTensor*> in;
  RefTensor& out;
};

using Kernel = void (*)(const KernelArgs&);
// The kernel for an op name; null when the interpreter has none.
Kernel find_kernel(const std::string& op_name);

void embedding(const KernelArgs&);
void dequant(const KernelArgs&);
void matmul(const KernelArgs&);
void qmatmul(const KernelArgs&);
void quantize(const KernelArgs&);
void add(const KernelArgs&);
void mul(const KernelArgs&);
void silu(const KernelArgs&);
void gelu(const KernelArgs&);
void swiglu(const KernelArgs&);
void rms_norm(const KernelArgs&);
void layer_norm(const KernelArgs&);
void softmax(const KernelArgs&);
void rope(const KernelArgs&);
void kv_write(const KernelArgs&);
void attention(const KernelArgs&);
void reshape(const KernelArgs&);
void view(const KernelArgs&);
void permute(const KernelArgs&);
void concat(const KernelArgs&);
void argmax(const KernelArgs&);

}  // namespace nibble::ref
