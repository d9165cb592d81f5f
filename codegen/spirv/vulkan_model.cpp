#include "codegen/spirv/vulkan_model.h"

#include <chrono>

#include <fmt/format.h>

#include "support/error.h"

namespace nibble::vk {

std::unique_ptr<VulkanModel> VulkanModel::create(Module& m, const VulkanOptions& o) {
  std::unique_ptr<VulkanModel> vm(new VulkanModel());
  vm->ctx_ = o.context ? o.context : Context::create({o.device, o.validation});
  VulkanCompileOptions co = o.compile;
  co.device = vm->ctx_->info();
  co.features = o.features;
  if (o.max_tokens > 0) co.max_tokens = o.max_tokens;
  auto t0 = std::chrono::steady_clock::now();
  vm->compiled_ = compile_for_vulkan(m, co);
  auto t1 = std::chrono::steady_clock::now();
  ExecutorOptions eo;
  eo.pipeline_cache_path = o.pipeline_cache;
  eo.profile = o.profile;
  eo.poison = o.poison;
  eo.max_binding_range = o.max_binding_range;
  eo.force_staging = o.force_staging;
  vm->exec_ = std::make_unique<Executor>(vm->ctx_, vm->compiled_.plan, eo);
  auto t2 = std::chrono::steady_clock::now();
  vm->compile_seconds_ = std::chrono::duration<double>(t1 - t0).count();
  vm->load_seconds_ = std::chrono::duration<double>(t2 - t1).count();
  return vm;
}

std::vector<float> VulkanModel::forward(const std::vector<int32_t>& tokens, const std::vector<int32_t>& pos) {
  if (tokens.size() != pos.size()) fail("vulkan: {} tokens but {} positions", tokens.size(), pos.size());
  std::vector<float> logits;
  const int64_t n = int64_t(tokens.size()), chunk = exec_->max_tokens();
  if (n == 0) return logits;
  for (int64_t first = 0; first < n; first += chunk) {
    int64_t len = std::min(chunk, n - first);
    std::span<const float> l = exec_->forward(tokens.data() + first, pos.data() + first, len);
    logits.insert(logits.end(), l.begin(), l.end());
  }
  return logits;
}

void VulkanModel::reset() { exec_->reset(); }

std::string VulkanModel::profile_report() const {
  std::string s = exec_->profile_report();
  s += fmt::format("compile {:.1f} ms ({} kernels, variant {}), load {:.1f} ms (pipelines {:.1f} ms)\n",
                   compile_seconds_ * 1e3, compiled_.plan.kernels.size(), compiled_.features.str(),
                   load_seconds_ * 1e3, exec_->pipeline_seconds() * 1e3);
  return s;
}

std::string VulkanModel::describe() const {
  const VulkanPlan& p = compiled_.plan;
  uint64_t wbytes = 0;
  for (const WeightBlob& w : p.weights) wbytes += w.bytes;
  uint64_t sbytes = 0;
  for (const StateBuffer& s : p.states) sbytes += s.bytes;
  return fmt::format("{}; variant {}; {} kernels, {} dispatches; weights {:.1f} MiB, states {:.1f} MiB, arena {:.1f} MiB "
                     "for {} tokens",
                     ctx_->info().summary(), compiled_.features.str(), p.kernels.size(), p.dispatches.size(),
                     double(wbytes) / (1 << 20), double(sbytes) / (1 << 20), double(p.arena_bytes) / (1 << 20),
                     p.max_tokens);
}

std::vector<std::string> describe_devices() {
  std::vector<std::string> out;
  for (const DeviceInfo& d : list_devices()) out.push_back(d.summary() + "\n    " + d.features());
  return out;
}

}  // namespace nibble::vk
