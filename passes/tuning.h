// Measured schedules that override select-tiles' heuristic: what `nibble tune` found for one device,
// keyed by kernel signature (see tuning_signature). Filled by the driver from a tuning database
// (tools/tuning_db.h); docs/tuning.md.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>

#include "ir/ir.h"

namespace nibble {

// A CPU qmatmul's schedule (the select-tiles attributes of the same names).
struct TunedSchedule {
  int64_t rows_per_task = 16;
  int64_t k_unroll = 1;
  int64_t m_tile = 4;
  bool operator==(const TunedSchedule&) const = default;
};

// A Vulkan qmatmul's tiles (codegen/spirv/kernels.h: GemvTiles, GemmTiles). Without a tuning entry
// the device's defaults apply (vk::tiles_for); with one, select-tiles records these on the op.
struct VulkanTiles {
  int64_t gemv_wg = 8;    // GEMV invocations per workgroup (a power of two; they split K)
  int64_t gemv_rows = 8;  // GEMV weight rows per workgroup
  // The batch kernel (n_tokens >= gemm_from): "gemv", the GEMV over batch_tokens tokens per
  // workgroup (gemv_wg, gemv_rows), or "gemm", shared-memory tiles gemm = {bm, bn, bk, tm, tn}
  // (weight rows x tokens x K per tile, outputs per invocation tm x tn).
  std::string batch = "gemv";
  int64_t batch_tokens = 8;
  std::array<int64_t, 5> gemm = {64, 64, 32, 4, 4};
  // Equal when they compile to the same kernels (the unused batch kind's fields do not count).
  bool operator==(const VulkanTiles& o) const;
};

// What a database entry holds: the schedule of the entry's target.
using KernelSchedule = std::variant<TunedSchedule, VulkanTiles>;

struct TuningTable {
  std::string device;                                 // the fingerprint the entries were measured on
  std::map<std::string, KernelSchedule> by_signature;
};

// What a CPU qmatmul's schedule depends on, besides the device (the fingerprint keys that):
//   weight format, activation type, N, K, the weight's layout, the path and the thread count
//   (rows_per_task trades tasks per thread against L2 footprint).
// Path: "gemv+gemm" when M depends on n_tokens (one schedule for decode, whose gemv kernel uses
// rows_per_task and k_unroll, and for prefill, whose gemm variant also uses m_tile); a static M
// gives "gemv M=<M>" or "gemm M=<M>". Epilogues (bias, residual) are not part of it.
// E.g. "qmatmul q4_0 act=q8_0 N=288 K=768 layout=rows_x4 path=gemv+gemm threads=2".
// Call after select-layout (the layout is read from the weight's declaration).
std::string tuning_signature(const Module& m, const Op& qmatmul, int threads);

// A Vulkan qmatmul's: weight format, activation type, N, K and the path, then target=vulkan (GPU
// kernels read weights in GGUF order, whatever the layout; the thread count is the CPU's).
// E.g. "qmatmul q4_0 act=q8_0 N=288 K=768 path=gemv+gemm target=vulkan".
std::string vulkan_tuning_signature(const Op& qmatmul);

// A tuned schedule select-tiles may use for an N-row weight: rows_per_task a positive multiple of 16
// (see select_tiles.cpp: results then do not depend on the thread count), k_unroll in [1, 8], m_tile
// in [1, 16] (codegen's limits). Returns "" when valid, else why not.
std::string validate_tuned(const TunedSchedule& s);
// Vulkan tiles any device might run (the kernels' own constraints; the device's limits are checked
// by codegen, vk::tiles_fit): gemv_wg a power of two in [1, 1024], gemv_rows and batch_tokens in
// [1, 64], batch "gemv" or "gemm", gemm tiles positive with bk a multiple of 32, tm | bm, tn | bn.
std::string validate_tuned(const VulkanTiles& t);
std::string validate_tuned(const KernelSchedule& s);

// The IR attributes select-tiles records Vulkan tiles in (vk_gemv_wg, vk_gemv_rows, vk_batch,
// vk_batch_tokens or vk_gemm_tiles) and codegen reads; nullopt when the op has none (the device's
// defaults apply). Throws nibble::Error naming the op when they are incomplete or invalid.
void set_vulkan_tiles(Op& qmatmul, const VulkanTiles& t);
void clear_vulkan_tiles(Op& qmatmul);
std::optional<VulkanTiles> vulkan_tiles_of(const Op& qmatmul);
// How errors name a qmatmul: "qmatmul %name", or by its weight ("qmatmul of @output.weight").
std::string tuned_op_ref(const Op& qmatmul);

}  // namespace nibble
