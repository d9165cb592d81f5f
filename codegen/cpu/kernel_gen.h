// Internal to nibble_codegen_cpu: the LLVM IR generators of the JIT kernels (kernel_gen.cpp on
// formats_ir.cpp and ir_builder.cpp), called by cpu_jit.cpp. Declares LLVM types only by name.
#pragma once
#include <string>

#include "codegen/cpu/cpu_jit.h"

namespace llvm {
class Module;
}

namespace nibble::cpu::detail {

// Part of the disk-cache key, with a hash of the generator's sources (generator_hash.h, made by the
// build): bump it when generated code changes without a source change (e.g. a new LLVM behaviour).
inline constexpr int kGeneratorVersion = 1;

enum class KernelKind { QMatmul, Quantize, GetRows };

struct KernelSpec {
  KernelKind kind = KernelKind::QMatmul;
  QMatmulKernel mm{};          // for QMatmul
  DType type = DType::F32;     // activation format (Quantize) or table type (GetRows)
  std::string symbol;
};

// Validates a request; throws nibble::Error with the reason when no kernel can be made.
void check_spec(const KernelSpec& spec);

// Adds the external function `spec.symbol` (and internal helpers) to `m`, generated for `target`.
void emit_kernel(llvm::Module& m, const HostCpu& target, const KernelSpec& spec);

}  // namespace nibble::cpu::detail
