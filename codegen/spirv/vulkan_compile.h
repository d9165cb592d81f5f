// Lowers IR to a VulkanPlan: one dispatch per op that computes, kernels generated from the templates
// of kernels.h for the device's feature variant and compiled to SPIR-V in process.
//
// Accepted input: the output of the "vulkan" pipeline (qmatmul(quantize(x), w), qmatmul(x, w) with
// bias/residual epilogues, rms_norm(x, s), arena offsets from plan-buffers), and also unscheduled IR
// (matmul(x, dequant(w)) {transpose_b}, mul(rms_norm(x), s), no arena offsets): then buffers are
// planned here (liveness, first fit).
//
// Numerics: by default (ActivationQuant) `quantize` is an alias: every qmatmul computes on f32
// activations, dequantizing weights in registers (the f32-activation path of ../shared/reference
// README §7). Weight `layout` attributes are ignored: GPU kernels read the GGUF block order ("rows")
// directly, so nothing is repacked. Buffers: the module's plan-buffers offsets are used when the IR
// has no quantize; otherwise (the GPU's quantize results differ from the CPU's in size and
// liveness) they are re-planned here.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codegen/spirv/glsl_compiler.h"
#include "codegen/spirv/kernels.h"
#include "ir/ir.h"
#include "passes/tuning.h"
#include "runtime/vulkan/device.h"
#include "runtime/vulkan/plan.h"

namespace nibble::vk {

// Per feature: nullopt lets the device decide; false forces the fallback; true requires the feature
// (an error when the device lacks it).
struct FeatureOverrides {
  std::optional<bool> subgroup, storage16, storage8, float16, int_dot;
};

// Whether `quantize` runs on the GPU: qmatmul(quantize(x): q8_0/q8_1, w: q4_0/q4_1/q5_0/q5_1/q8_0)
// then uses integer dot products on the quantized activations (ggml's numerics, and the reference
// executor's on the same IR). Auto: where the device accelerates 4x8-bit dot products. Otherwise
// quantize is an alias and the qmatmul computes on f32 activations. K-quant activations (q8_K) are
// always aliased.
enum class ActivationQuant { Auto, Off, On };

struct VulkanCompileOptions {
  DeviceInfo device;          // the target's features and limits (Context::info() or list_devices())
  FeatureOverrides features;
  int64_t max_tokens = 0;     // tokens per call when the module is not planned (0: 512, at most n_ctx)
  int64_t gemm_from = 4;      // token count from which qmatmul runs the GEMM kernel (0: never)
  // Tiles and the batch kernel (n_tokens >= gemm_from): with auto_tiles chosen by device type
  // (tiles_for), else as given here; a qmatmul with its own tiles (qmatmul_tiles) uses those.
  bool auto_tiles = true;
  GemvTiles gemv;
  GemmTiles gemm;
  enum class Batch { TiledGemm, MultiTokenGemv } batch = Batch::TiledGemm;
  uint32_t batch_tokens = 8;  // tokens per workgroup of the multi-token GEMV
  uint32_t wg = 64;           // workgroup size of row-wise kernels (a power of two)
  uint32_t attention_wg = 64;
  uint32_t attention_chunk = 0;  // cache rows of scores kept in shared memory (0: from the device limit)
  ActivationQuant quantized_activations = ActivationQuant::Auto;
  bool naive_matmul = false;     // the benchmark's baseline kernel for every matmul (one invocation per output)
  GlslCompileOptions glsl;
};

struct VulkanCompiled {
  VulkanPlan plan;
  std::vector<std::vector<uint8_t>> repacked;  // weights in GPU layouts (none today: GGUF order is used)
  ShaderFeatures features;                     // the variant every kernel was generated for
  std::vector<std::string> notes;              // decisions worth logging
};

// Defaults per device type, measured on lavapipe (type "cpu"): one subgroup of 8 invocations per
// GEMV workgroup over 8 rows, and for batches the same GEMV over 8 tokens at a time (it beats a
// shared-memory GEMM there: CPU caches already are the "shared memory"); on GPUs 64 invocations over
// 2 rows and a 64x64x32 shared-memory GEMM with 4x4 outputs per invocation.
void tiles_for(const DeviceInfo& d, VulkanCompileOptions& o);

// The tiles qmatmuls run with on o's device unless an op carries its own: o's gemv/batch/gemm, after
// tiles_for when o.auto_tiles (VulkanTiles' GEMV is one token per workgroup, as tiles_for's; an
// op's own tiles are compiled so).
VulkanTiles device_tiles(const VulkanCompileOptions& o);
// The tiles a qmatmul is compiled with: the op's own (select-tiles' vk_* attributes, from a tuning
// entry: passes/tuning.h) or else device_tiles(o).
VulkanTiles qmatmul_tiles(const Op& qmatmul, const VulkanCompileOptions& o);
// "" when device d can run the kernels of tiles t (workgroup size, shared memory), else why not.
std::string tiles_fit(const VulkanTiles& t, const DeviceInfo& d);

// The variant compiled for a device: its features, minus forced-off ones. Throws nibble::Error when
// a feature forced on is missing.
ShaderFeatures select_features(const DeviceInfo& d, const FeatureOverrides& o);

// The module must outlive the result (weight bytes are referenced, not copied).
VulkanCompiled compile_for_vulkan(const Module& m, const VulkanCompileOptions& o);

}  // namespace nibble::vk
