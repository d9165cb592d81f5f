// The front API the CLI calls for --target vulkan: compiles a scheduled module for a Vulkan device
// and runs it. `nibble devices` prints describe_devices().
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codegen/spirv/vulkan_compile.h"
#include "ir/ir.h"
#include "runtime/vulkan/device.h"
#include "runtime/vulkan/executor.h"

namespace nibble::vk {

struct VulkanOptions {
  int device = 0;                    // index into list_devices()
  FeatureOverrides features;         // force feature variants off (or on)
  std::string pipeline_cache;        // VkPipelineCache file ("": none)
  bool profile = false;              // per-kernel GPU time (timestamps) for profile_report()
  bool validation = false;           // VK_LAYER_KHRONOS_validation; messages via context()->take_messages()
  int64_t max_tokens = 0;            // tokens per call when the module is not planned (0: 512)
  bool poison = false;               // NaN-fill the arena before every call (tests)
  uint64_t max_binding_range = 0;    // force row slices of big bindings below this size (tests)
  bool force_staging = false;        // staged uploads and output copies even on host-visible memory (tests)
  std::shared_ptr<Context> context;  // reuse a device (tests); else one is created from device/validation
  VulkanCompileOptions compile;      // tiles etc.; its device/features/max_tokens are filled by create()
};

class VulkanModel {
 public:
  // Compiles `scheduled_module` (after the vulkan pipeline, or unscheduled IR: see vulkan_compile.h)
  // and loads it: weights uploaded, pipelines created. The module must outlive the model.
  static std::unique_ptr<VulkanModel> create(Module& scheduled_module, const VulkanOptions& o);

  // Evaluates tokens at positions (any count: chunks of max_tokens); returns the logits
  // [tokens.size() x n_vocab] (the first result of @forward).
  std::vector<float> forward(const std::vector<int32_t>& tokens, const std::vector<int32_t>& pos);
  void reset();  // clears the KV cache
  std::string profile_report() const;

  // Every result of @forward after the last call (its last chunk), as raw 32-bit words.
  std::vector<uint32_t> output_words(size_t i) const { return exec_->output_words(i); }
  int64_t n_vocab() const { return exec_->n_vocab(); }
  int64_t n_ctx() const { return exec_->n_ctx(); }
  int64_t max_tokens() const { return exec_->max_tokens(); }
  const VulkanCompiled& compiled() const { return compiled_; }
  const std::shared_ptr<Context>& context() const { return ctx_; }
  Executor& executor() { return *exec_; }
  std::string describe() const;  // device, variant, kernels, memory

 private:
  VulkanModel() = default;
  std::shared_ptr<Context> ctx_;
  VulkanCompiled compiled_;
  std::unique_ptr<Executor> exec_;
  double compile_seconds_ = 0, load_seconds_ = 0;
};

// One entry per device: summary line, then the features the compiler uses. Empty vector: none.
std::vector<std::string> describe_devices();

}  // namespace nibble::vk
