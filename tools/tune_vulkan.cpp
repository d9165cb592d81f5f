// nibble tune --target vulkan: a qmatmul's GPU tiles (passes/tuning.h VulkanTiles; without an
// entry the device's, vk::tiles_for).
//   1. decode (the GEMV, below gemm_from tokens): invocations per workgroup 8..256 (powers of two,
//      from the subgroup size, at most one per K unit beyond the smallest) x weight rows per
//      workgroup 1, 2, 4, 8, 16;
//   2. prefill (the batch kernel): the best GEMV over 4, 8 or 16 tokens per workgroup, or a
//      shared-memory GEMM of 32x32x32/4x4, 64x32x32/4x4, 64x64x32/4x4 or 128x64x32/8x8 tiles.
// Candidates the device cannot run (vk::tiles_fit: invocations, shared memory) are left out. All
// candidates share one Context (device), so each costs its shaders' compilation and pipelines only.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "codegen/spirv/kernels.h"
#include "codegen/spirv/vulkan_compile.h"
#include "runtime/vulkan/device.h"
#include "support/error.h"
#include "tools/tune_target.h"

namespace nibble::tools {

namespace {

class VulkanTuneTarget : public TuneTarget {
 public:
  VulkanTuneTarget(const std::string& target, const std::string& activations)
      : target_(target), activations_(activations) {
    const int index = vulkan_device_index(target);
    const size_t n = vk::list_devices().size();
    if (size_t(index) >= n) fail("tune --target {}: {} Vulkan device(s) here (nibble devices lists them)", target, n);
    ctx_ = vk::Context::create({index, false});
    co_.device = ctx_->info();
    vk::tiles_for(co_.device, co_);
    co_.auto_tiles = false;
  }

  std::string target() const override { return target_; }
  std::string about() const override { return fmt::format("vulkan:{}", ctx_->info().index); }
  std::string pipeline() const override { return "vulkan"; }
  ExecutorOptions executor_options() const override {
    ExecutorOptions eo;
    eo.target = target_;
    eo.vulkan_context = ctx_;
    eo.vulkan_activations = activations_;
    return eo;
  }
  std::string signature(const Module&, const Op& op) const override { return vulkan_tuning_signature(op); }
  KernelSchedule heuristic(const Op& op) const override { return vk::qmatmul_tiles(op, co_); }

  std::vector<KernelSchedule> decode_candidates(const TuneKernel& k) const override {
    const VulkanTiles& h = std::get<VulkanTiles>(k.heuristic);
    const vk::DeviceInfo& d = ctx_->info();
    // K units a workgroup's invocations split (kernels.h: 32 elements of a block format, 8 plain).
    const int64_t units = std::max<int64_t>(1, k.K / (dtype_info(k.weight).block_size > 1 ? 32 : 8));
    const int64_t wg_min = std::max<int64_t>(8, d.subgroup_size);
    std::vector<VulkanTiles> out;
    for (int64_t wg = wg_min; wg <= 256; wg *= 2) {
      if (wg > wg_min && wg / 2 >= units) break;  // invocations beyond the K units idle
      for (int64_t rows : {1, 2, 4, 8, 16}) {
        if (rows > k.N) break;
        VulkanTiles t = h;
        t.gemv_wg = wg;
        t.gemv_rows = rows;
        if (!(t == h) && vk::tiles_fit(t, d).empty()) out.push_back(t);
      }
    }
    const auto distance = [&](const VulkanTiles& t) {
      return std::fabs(std::log2(double(t.gemv_wg) / double(h.gemv_wg))) +
             std::fabs(std::log2(double(t.gemv_rows) / double(h.gemv_rows)));
    };
    std::stable_sort(out.begin(), out.end(),
                     [&](const VulkanTiles& a, const VulkanTiles& b) { return distance(a) < distance(b); });
    return {out.begin(), out.end()};
  }

  std::vector<KernelSchedule> prefill_candidates(const TuneKernel&, const KernelSchedule& best_decode) const override {
    const VulkanTiles& b = std::get<VulkanTiles>(best_decode);
    std::vector<KernelSchedule> out;
    for (int64_t tokens : {4, 8, 16}) {
      VulkanTiles t = b;
      t.batch = "gemv";
      t.batch_tokens = tokens;
      if (vk::tiles_fit(t, ctx_->info()).empty()) out.push_back(t);
    }
    for (const std::array<int64_t, 5>& g : {std::array<int64_t, 5>{32, 32, 32, 4, 4}, std::array<int64_t, 5>{64, 32, 32, 4, 4},
                                            std::array<int64_t, 5>{64, 64, 32, 4, 4}, std::array<int64_t, 5>{128, 64, 32, 8, 8}}) {
      VulkanTiles t = b;
      t.batch = "gemm";
      t.gemm = g;
      if (vk::tiles_fit(t, ctx_->info()).empty()) out.push_back(t);
    }
    return out;
  }

  // quantize runs on the GPU (vulkan_compile.h, ActivationQuant) for formats with an integer-dot
  // GEMV, with "auto" where the device accelerates integer dots; then the GEMV kernels (decode, and
  // the multi-token batch) read the quantized activations, the tiled GEMM the f32 ones.
  bool quantized_activations(const TuneKernel& k, const KernelSchedule& s, int n_tokens) const override {
    const vk::DeviceInfo& d = ctx_->info();
    const bool q8 = activations_ == "q8" || (activations_ == "auto" && d.int_dot && d.int_dot_accelerated);
    if (!q8 || !vk::q8_gemv_supported(k.weight)) return false;
    const bool batch = co_.gemm_from > 0 && n_tokens >= co_.gemm_from;
    return !batch || std::get<VulkanTiles>(s).batch == "gemv";
  }

  std::string schedule_str(const KernelSchedule& s) const override {
    const VulkanTiles& t = std::get<VulkanTiles>(s);
    if (t.batch == "gemv") return fmt::format("wg{} r{} gemv{}", t.gemv_wg, t.gemv_rows, t.batch_tokens);
    const auto [bm, bn, bk, tm, tn] = t.gemm;
    return fmt::format("wg{} r{} gemm{}x{}x{}/{}x{}", t.gemv_wg, t.gemv_rows, bm, bn, bk, tm, tn);
  }
  std::string legend() const override {
    return "schedules: GEMV invocations (wg) and rows (r) per workgroup, then the batch kernel: the GEMV over "
           "gemv<N> tokens per workgroup, or gemm<BM>x<BN>x<BK>/<TM>x<TN> tiles";
  }

 private:
  std::string target_, activations_;
  std::shared_ptr<vk::Context> ctx_;
  vk::VulkanCompileOptions co_;  // the device with its default tiles
};

}  // namespace

std::unique_ptr<TuneTarget> make_vulkan_tune_target(const std::string& target, const std::string& activations) {
  if (activations != "auto" && activations != "q8" && activations != "f32")
    fail("vulkan activations '{}': expected auto, q8 or f32", activations);
  return std::make_unique<VulkanTuneTarget>(target, activations);
}

}  // namespace nibble::tools
