// What the CLI runs a model on: the reference interpreter or a compiled backend (cpu, vulkan). One
// interface so generate, logits, perplexity and bench work the same on every target.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "codegen/cpu/cpu_jit.h"
#include "codegen/plan/cpu_lowering.h"
#include "ir/ir.h"
#include "passes/pass.h"
#include "runtime/cpu/executor.h"
#ifdef NIBBLE_HAVE_VULKAN
#include "codegen/spirv/vulkan_model.h"
#endif

namespace nibble::vk {
class Context;
}

namespace nibble::tools {

class Executor {
 public:
  virtual ~Executor() = default;
  // Evaluates tokens at positions (any count; compiled targets run chunks of max_tokens); returns
  // the logits [tokens.size() x n_vocab], valid until the next call. Compiled targets allocate
  // nothing here when the call fits in one chunk.
  virtual std::span<const float> forward(std::span<const int32_t> tokens, std::span<const int32_t> pos) = 0;
  virtual void reset() = 0;  // clears the KV cache
  // Per-kernel time since creation (ExecutorOptions::profile); "" when not profiled.
  virtual std::string profile_report() const { return ""; }
  virtual std::string describe() const = 0;
  virtual std::string target() const = 0;  // ref, cpu, vulkan
  virtual int threads() const { return 0; }  // cpu: worker threads; else 0  // one line: target, device, threads, compile/load cost
  // Vulkan with ExecutorOptions::validation: the validation layer's messages since the last call
  // (taken: each is returned once). Other targets: none.
  virtual std::vector<std::string> take_messages() { return {}; }
  int64_t n_vocab() const { return n_vocab_; }
  int64_t n_ctx() const { return n_ctx_; }

 protected:
  int64_t n_vocab_ = 0, n_ctx_ = 0;
};

struct ExecutorOptions {
  std::string target = "ref";  // ref, cpu, vulkan, vulkan:N
  int threads = 0;             // cpu: worker threads (0: all hardware threads)
  int64_t max_tokens = 512;    // compiled targets: tokens per call the buffers are planned for
  std::string cache_dir;       // compiled kernels cache ("": $XDG_CACHE_HOME/nibble or ~/.cache/nibble)
  bool profile = false;        // compiled targets: time every kernel (profile_report)
  bool poison = false;         // compiled targets (tests): fill the activation arena with NaN bytes before
                               // every call, so a read of an element nothing wrote shows up
  bool validation = false;     // vulkan: VK_LAYER_KHRONOS_validation (Executor::take_messages)
  // vulkan: activations of q4_0/q4_1/q5_0/q5_1/q8_0 weight products: "auto" (q8 blocks and integer
  // dots where the device accelerates them, else f32), "q8" (forced: the integer-dot kernels on any
  // device; tests), "f32" (quantize is an alias).
  std::string vulkan_activations = "auto";
  // Measured schedules from a tuning database (nibble tune) for this device; null: the heuristic.
  std::shared_ptr<const TuningTable> tuning;
  // vulkan: run on this device (tune shares one across its candidates); null: open the target's.
  std::shared_ptr<vk::Context> vulkan_context;
};

// Runs the target's pass pipeline on the module, then compiles and loads it. The module must
// outlive the executor.
std::unique_ptr<Executor> make_executor(Module& m, const ExecutorOptions& opts);

// The pass options `target` is compiled with on this machine: for cpu, the host CPU's features and
// vector width (as the JIT detects them) and the thread count (0: all hardware threads).
PassOptions host_pass_options(const std::string& target, int threads, int64_t max_tokens);

// The directory compiled kernels are cached in (created on demand by the JIT).
std::string default_cache_dir();

// The pieces make_executor is made of, shared with `nibble compile` (tools/plan.cpp), which writes
// what they produce to a plan file instead of running it.
bool is_vulkan_target(const std::string& target);    // vulkan or vulkan:N
int vulkan_device_index(const std::string& target);  // N of vulkan:N (0 for vulkan); throws when malformed
// Runs the target's pass pipeline with this machine's pass options (and opts.tuning).
void run_pipeline(Module& m, const std::string& target, const ExecutorOptions& opts);

struct CpuCompiled {
  std::unique_ptr<cpu::CpuJit> jit;
  std::unique_ptr<cpu::CompiledCpuModel> compiled;
  int threads = 1;
  double passes_ms = 0, jit_ms = 0;
};
// Pipeline, lowering and JIT for the host CPU; the module must outlive the result.
std::unique_ptr<CpuCompiled> compile_cpu(Module& m, const ExecutorOptions& opts);
// An executor over a ready CPU plan; `backing` owns what the plan points into; `cpu` and `origin`
// (where the code came from) are for describe().
std::unique_ptr<Executor> make_cpu_plan_executor(const rt::CpuPlan& plan, const rt::CpuExecutor::JitResolver& resolve,
                                                 int threads, const ExecutorOptions& opts, std::shared_ptr<void> backing,
                                                 std::string cpu, std::string origin);
#ifdef NIBBLE_HAVE_VULKAN
vk::VulkanOptions vulkan_options(const ExecutorOptions& opts, int device);
std::unique_ptr<Executor> make_vulkan_plan_executor(std::shared_ptr<vk::Context> ctx, const vk::VulkanPlan& plan,
                                                    const ExecutorOptions& opts, std::shared_ptr<void> backing);
#endif

}  // namespace nibble::tools
