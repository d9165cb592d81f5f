// Lowers scheduled IR (after the cpu pipeline) to an executable CPU plan: one step per op that
// computes, kernels requested from the JIT, weights repacked into their chosen layouts once.
#pragma once
#include <memory>
#include <vector>

#include "codegen/cpu/cpu_jit.h"
#include "ir/ir.h"
#include "runtime/cpu/plan.h"

namespace nibble::cpu {

struct CompiledCpuModel {
  rt::CpuPlan plan;
  std::vector<std::vector<uint8_t>> repacked;  // weights in non-GGUF layouts; plan.weights point here
};

// Requests every kernel from `jit` (the caller compiles it) and fills the plan. The module must be
// the output of the cpu pipeline (arena offsets, layouts, schedules) and outlive the result.
std::unique_ptr<CompiledCpuModel> lower_to_cpu_plan(const Module& m, CpuJit& jit);

}  // namespace nibble::cpu
