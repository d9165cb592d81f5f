// Runs a VulkanPlan. Everything is created once at construction: one memory arena per plan, weights
// uploaded once (through a staging buffer when the memory is not host-visible), zeroed states,
// pipelines (with an optional persisted VkPipelineCache), one descriptor set per dispatch (per slice)
// written once. Command buffers are recorded once per token count and replayed; n_tokens reaches the
// kernels as a push constant baked into that recording, positions come from the pos buffer.
// Not reentrant: one forward() at a time per executor.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/vulkan/device.h"
#include "runtime/vulkan/plan.h"

namespace nibble::vk {

struct ExecutorOptions {
  std::string pipeline_cache_path;  // load/save a VkPipelineCache here ("": none)
  bool profile = false;             // timestamp queries around every dispatch
  bool poison = false;              // fill the arena with NaN before every call (tests: unwritten elements)
  size_t max_recordings = 16;       // command buffers kept (one per distinct token count, LRU)
  uint64_t max_binding_range = 0;   // bind at most this many bytes per descriptor (0: maxStorageBufferRange);
                                    // tests force the row-slicing path with it
  bool force_staging = false;       // upload through staging and copy outputs back even when memory is
                                    // host-visible (the discrete-GPU paths, testable on lavapipe)
};

struct KernelProfile {
  std::string label;
  int64_t calls = 0;
  double seconds = 0;  // GPU time
  double bytes = 0;    // bytes moved (plan estimate)
};

class Executor {
 public:
  Executor(std::shared_ptr<Context> ctx, const VulkanPlan& plan, const ExecutorOptions& opts = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Runs 1 <= n <= max_tokens tokens; returns outputs[0] (the logits, f32 [n, n_vocab]) valid until
  // the next call. Throws nibble::Error for bad ids/positions/n, device loss, timeouts.
  std::span<const float> forward(const int32_t* tokens, const int32_t* pos, int64_t n);
  // Output i of the last call as raw 32-bit words (f32 or i32 bit patterns).
  std::vector<uint32_t> output_words(size_t i) const;
  void reset();  // zeroes the states (the KV cache)

  int64_t max_tokens() const { return max_tokens_; }
  int64_t n_vocab() const { return n_vocab_; }
  int64_t n_ctx() const { return n_ctx_; }
  const Context& context() const { return *ctx_; }
  size_t recordings() const { return recordings_.size(); }   // cached command buffers
  size_t pipelines() const { return pipelines_.size(); }
  size_t launches() const { return launches_.size(); }  // dispatches after row slicing

  void set_profiling(bool on) { profiling_ = on && ctx_->info().timestamps; }
  bool profiling() const { return profiling_; }
  std::vector<KernelProfile> profile() const;  // most GPU time first
  std::string profile_report() const;
  void clear_profile();
  double last_gpu_seconds() const { return last_gpu_s_; }  // whole call, when profiling
  double pipeline_seconds() const { return pipeline_seconds_; }  // creating the pipelines at load

 private:
  struct Buffer {
    VkBuffer buf = VK_NULL_HANDLE;
    VkDeviceMemory mem = VK_NULL_HANDLE;
    void* mapped = nullptr;
    uint64_t size = 0;
    bool host_coherent = false;
  };
  struct Resolved {
    VkBuffer buf;
    uint64_t offset;    // absolute offset in buf
    uint64_t range;     // bytes the kernel may touch
    uint64_t buf_size;
  };
  struct Launch {  // one vkCmdDispatch: a dispatch or one slice of it
    uint32_t dispatch;
    VkDescriptorSet set;
    uint32_t push[kPushWords];
    GroupCount groups[3], batch_groups[3];
  };
  struct Recording {
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    uint64_t last_use = 0;
    uint32_t timestamps = 0;
  };

  Buffer create_buffer(uint64_t size, bool host_visible, const char* what);
  void destroy_buffer(Buffer& b);
  Resolved resolve(const Binding& b) const;
  void upload_weights();
  void create_pipelines(const std::string& cache_path);
  void create_launches();
  Recording& recording(int64_t n);
  void record(Recording& r, int64_t n);
  void submit(VkCommandBuffer cmd);
  void one_shot(const std::function<void(VkCommandBuffer)>& fn);
  void save_pipeline_cache();
  void release();  // idempotent: destroys every Vulkan object

  std::shared_ptr<Context> ctx_;
  VulkanPlan plan_;  // a copy without weight bytes' ownership
  ExecutorOptions opts_;
  int64_t max_tokens_ = 0, n_vocab_ = 0, n_ctx_ = 0;

  std::vector<Buffer> weight_pages_, state_pages_;
  std::vector<std::pair<uint32_t, uint64_t>> weight_loc_, state_loc_;  // page, offset
  Buffer arena_, io_, readback_;
  uint64_t tokens_off_ = 0, pos_off_ = 0;
  std::vector<uint64_t> readback_off_;  // per output, in readback_ (when the arena is not mapped)

  VkPipelineCache cache_ = VK_NULL_HANDLE;
  std::vector<VkDescriptorSetLayout> set_layouts_;       // by binding count
  std::vector<VkPipelineLayout> pipeline_layouts_;       // by binding count
  std::vector<VkShaderModule> modules_;
  std::vector<VkPipeline> pipelines_;                    // per kernel
  VkDescriptorPool pool_ = VK_NULL_HANDLE;
  std::vector<Launch> launches_;
  VkCommandPool cmd_pool_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  VkQueryPool queries_ = VK_NULL_HANDLE;
  uint32_t query_count_ = 0;
  std::map<int64_t, Recording> recordings_, profiled_recordings_;
  uint64_t use_clock_ = 0;
  bool lost_ = false;
  int64_t last_n_ = 0;

  bool profiling_ = false;
  std::vector<std::string> prof_labels_;
  std::vector<uint32_t> launch_slot_;  // launch -> profile slot
  std::vector<int64_t> prof_calls_;
  std::vector<double> prof_seconds_, prof_bytes_;
  double last_gpu_s_ = 0, pipeline_seconds_ = 0;
  std::string cache_path_;
};

}  // namespace nibble::vk
