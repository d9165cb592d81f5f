#include "tools/executor.h"

#include <chrono>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>

#include "codegen/cpu/cpu_jit.h"
#include "codegen/plan/cpu_lowering.h"
#include "ir/interp/interpreter.h"
#include "passes/pass.h"
#include "passes/pipeline.h"
#include "runtime/cpu/executor.h"
#include "support/error.h"
#ifdef NIBBLE_HAVE_VULKAN
#include "codegen/spirv/vulkan_model.h"
#endif

namespace nibble::tools {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

void check_lengths(std::span<const int32_t> tokens, std::span<const int32_t> pos) {
  if (tokens.size() != pos.size()) fail("forward: {} tokens but {} positions", tokens.size(), pos.size());
}

// Runs calls longer than one chunk as consecutive chunks, gathering every row's logits.
template <class RunChunk>
std::span<const float> chunked(std::span<const int32_t> tokens, std::span<const int32_t> pos, int64_t chunk,
                               int64_t n_vocab, std::vector<float>& gathered, RunChunk run) {
  const int64_t n = int64_t(tokens.size());
  if (n <= chunk) return run(tokens.data(), pos.data(), n);
  gathered.resize(size_t(n * n_vocab));
  for (int64_t first = 0; first < n; first += chunk) {
    int64_t len = std::min(chunk, n - first);
    std::span<const float> l = run(tokens.data() + first, pos.data() + first, len);
    std::copy(l.begin(), l.end(), gathered.begin() + first * n_vocab);
  }
  return gathered;
}

class RefExecutor : public Executor {
 public:
  explicit RefExecutor(const Module& m) : interp_(m) {
    n_vocab_ = m.attrs.int_or("n_vocab", 0);
    n_ctx_ = m.attrs.int_or("n_ctx", 0);
  }
  std::span<const float> forward(std::span<const int32_t> tokens, std::span<const int32_t> pos) override {
    check_lengths(tokens, pos);
    logits_ = interp_.forward({tokens.begin(), tokens.end()}, {pos.begin(), pos.end()});
    return logits_;
  }
  void reset() override { interp_.reset_state(); }
  std::string describe() const override { return "target ref (the reference interpreter, f32)"; }
  std::string target() const override { return "ref"; }

 private:
  Interpreter interp_;
  std::vector<float> logits_;
};

// Runs an rt::CpuPlan, whoever made it: the JIT (a GGUF compiled now) or a plan file (object code
// loaded by runtime/cpu/object_loader). `backing` owns what the plan points into.
class CpuTargetExecutor : public Executor {
 public:
  CpuTargetExecutor(const rt::CpuPlan& plan, const rt::CpuExecutor::JitResolver& resolve, int threads,
                    const ExecutorOptions& opts, std::shared_ptr<void> backing, std::string cpu,
                    std::function<std::string()> origin)
      : backing_(std::move(backing)), cpu_(std::move(cpu)), origin_(std::move(origin)) {
    exec_ = std::make_unique<rt::CpuExecutor>(plan, resolve, threads);
    exec_->set_profiling(opts.profile);
    exec_->set_poison(opts.poison);
    n_vocab_ = exec_->n_vocab();
    n_ctx_ = exec_->n_ctx();
    arena_mib_ = double(plan.arena_bytes) / (1 << 20);
  }
  std::span<const float> forward(std::span<const int32_t> tokens, std::span<const int32_t> pos) override {
    check_lengths(tokens, pos);
    return chunked(tokens, pos, exec_->max_tokens(), n_vocab_, gathered_,
                   [&](const int32_t* t, const int32_t* p, int64_t n) { return exec_->forward(t, p, n); });
  }
  void reset() override { exec_->reset(); }
  std::string profile_report() const override { return exec_->profiling() ? exec_->profile_report() : ""; }
  std::string target() const override { return "cpu"; }
  int threads() const override { return exec_->threads(); }
  std::string describe() const override {
    return fmt::format("target cpu ({}), {} threads; {}, arena {:.1f} MiB", cpu_, exec_->threads(), origin_(),
                       arena_mib_);
  }

 private:
  std::shared_ptr<void> backing_;
  std::string cpu_;                      // the CPU the code was compiled for
  std::function<std::string()> origin_;  // how the code came to be: compile costs, or the plan file
  std::unique_ptr<rt::CpuExecutor> exec_;
  std::vector<float> gathered_;
  double arena_mib_ = 0;
};

std::unique_ptr<Executor> cpu_executor_for_module(Module& m, const ExecutorOptions& opts) {
  auto c = std::shared_ptr<CpuCompiled>(compile_cpu(m, opts).release());
  const cpu::HostCpu& h = c->jit->target();
  std::string cpu = fmt::format("{}, {}-bit vectors{}{}", h.name, h.vector_bits(), h.avx512vnni ? ", avx512-vnni" : "",
                                h.avxvnni ? ", avx-vnni" : "");
  auto origin = [c] {
    cpu::JitStats s = c->jit->stats();
    return fmt::format("passes {:.0f} ms, kernels {:.0f} ms ({} JIT, {} from cache)", c->passes_ms, c->jit_ms,
                       s.kernels - s.cache_hits, s.cache_hits);
  };
  cpu::CpuJit* jit = c->jit.get();
  return std::make_unique<CpuTargetExecutor>(
      c->compiled->plan, [jit](const std::string& s) { return jit->lookup(s); }, c->threads, opts, c, std::move(cpu),
      origin);
}

#ifdef NIBBLE_HAVE_VULKAN
class VulkanTargetExecutor : public Executor {
 public:
  // A module compiled now.
  VulkanTargetExecutor(Module& m, const ExecutorOptions& opts, int device) : profile_(opts.profile) {
    run_pipeline(m, "vulkan", opts);
    model_ = vk::VulkanModel::create(m, vulkan_options(opts, device));
    exec_ = &model_->executor();
    ctx_ = model_->context();
    init();
  }
  // A loaded plan; `backing` owns the bytes it points into (read once, at upload).
  VulkanTargetExecutor(std::shared_ptr<vk::Context> ctx, const vk::VulkanPlan& plan, const ExecutorOptions& opts,
                       std::shared_ptr<void> backing)
      : profile_(opts.profile), ctx_(std::move(ctx)), backing_(std::move(backing)) {
    vk::ExecutorOptions eo;
    eo.profile = opts.profile;
    eo.poison = opts.poison;
    own_exec_ = std::make_unique<vk::Executor>(ctx_, plan, eo);
    exec_ = own_exec_.get();
    about_ = fmt::format("{}; {} kernels, {} dispatches (from a plan)", ctx_->info().summary(), plan.kernels.size(),
                         plan.dispatches.size());
    init();
  }
  std::span<const float> forward(std::span<const int32_t> tokens, std::span<const int32_t> pos) override {
    check_lengths(tokens, pos);
    return chunked(tokens, pos, exec_->max_tokens(), n_vocab_, gathered_,
                   [&](const int32_t* t, const int32_t* p, int64_t n) { return exec_->forward(t, p, n); });
  }
  void reset() override { exec_->reset(); }
  std::string profile_report() const override {
    if (!profile_) return "";
    return model_ ? model_->profile_report() : exec_->profile_report();
  }
  std::string describe() const override { return "target vulkan: " + (model_ ? model_->describe() : about_); }
  std::string target() const override { return "vulkan"; }
  std::vector<std::string> take_messages() override {
    return ctx_ ? ctx_->take_messages() : std::vector<std::string>{};
  }

 private:
  void init() {
    n_vocab_ = exec_->n_vocab();
    n_ctx_ = exec_->n_ctx();
  }
  bool profile_ = false;
  std::shared_ptr<vk::Context> ctx_;
  std::shared_ptr<void> backing_;
  std::unique_ptr<vk::VulkanModel> model_;
  std::unique_ptr<vk::Executor> own_exec_;
  vk::Executor* exec_ = nullptr;
  std::string about_;
  std::vector<float> gathered_;
};
#endif

}  // namespace

PassOptions host_pass_options(const std::string& target, int threads, int64_t max_tokens) {
  PassOptions po;
  po.target = target;
  po.threads = threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
  po.max_tokens = max_tokens;
  if (target == "cpu") {
    const cpu::HostCpu host = cpu::detect_host();
    po.cpu_features = host.feature_set();
    po.vector_bits = host.vector_bits();
  }
  return po;
}

std::string default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/nibble";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/nibble";
  return "";
}

bool is_vulkan_target(const std::string& t) { return t == "vulkan" || t.starts_with("vulkan:"); }

int vulkan_device_index(const std::string& t) {
  if (t.size() <= 7) return 0;
  char* end = nullptr;
  long d = std::strtol(t.c_str() + 7, &end, 10);
  if (*end || d < 0 || d > 1000) fail("--target {}: expected vulkan:N with N a device index", t);
  return int(d);
}

void run_pipeline(Module& m, const std::string& target, const ExecutorOptions& opts) {
  PassOptions po = host_pass_options(target, opts.threads, opts.max_tokens);
  po.tuning = opts.tuning;
  PassManager pm(po);
  pm.add_pipeline(default_pipeline(target));
  pm.run(m);
}

std::unique_ptr<CpuCompiled> compile_cpu(Module& m, const ExecutorOptions& opts) {
  auto c = std::make_unique<CpuCompiled>();
  auto t0 = Clock::now();
  cpu::CpuJit::Options jo;
  jo.cache_dir = opts.cache_dir.empty() ? default_cache_dir() : opts.cache_dir;
  c->jit = std::make_unique<cpu::CpuJit>(jo);
  c->threads = host_pass_options("cpu", opts.threads, opts.max_tokens).threads;
  run_pipeline(m, "cpu", opts);
  c->passes_ms = ms_since(t0);
  auto t1 = Clock::now();
  c->compiled = cpu::lower_to_cpu_plan(m, *c->jit);
  c->jit->compile();
  c->jit_ms = ms_since(t1);
  return c;
}

std::unique_ptr<Executor> make_cpu_plan_executor(const rt::CpuPlan& plan, const rt::CpuExecutor::JitResolver& resolve,
                                                 int threads, const ExecutorOptions& opts, std::shared_ptr<void> backing,
                                                 std::string cpu, std::string origin) {
  return std::make_unique<CpuTargetExecutor>(plan, resolve, threads, opts, std::move(backing), std::move(cpu),
                                             [origin] { return origin; });
}

#ifdef NIBBLE_HAVE_VULKAN
vk::VulkanOptions vulkan_options(const ExecutorOptions& opts, int device) {
  vk::VulkanOptions vo;
  vo.device = device;
  vo.max_tokens = opts.max_tokens;
  vo.profile = opts.profile;
  vo.poison = opts.poison;
  vo.validation = opts.validation;
  vo.context = opts.vulkan_context;
  if (opts.vulkan_activations == "q8")
    vo.compile.quantized_activations = vk::ActivationQuant::On;
  else if (opts.vulkan_activations == "f32")
    vo.compile.quantized_activations = vk::ActivationQuant::Off;
  else if (opts.vulkan_activations != "auto")
    fail("vulkan activations '{}': expected auto, q8 or f32", opts.vulkan_activations);
  return vo;
}

std::unique_ptr<Executor> make_vulkan_plan_executor(std::shared_ptr<vk::Context> ctx, const vk::VulkanPlan& plan,
                                                    const ExecutorOptions& opts, std::shared_ptr<void> backing) {
  return std::make_unique<VulkanTargetExecutor>(std::move(ctx), plan, opts, std::move(backing));
}
#endif

std::unique_ptr<Executor> make_executor(Module& m, const ExecutorOptions& opts) {
  const std::string& t = opts.target;
  if (t == "ref") {
    PassManager pm(PassOptions{});
    pm.add_pipeline(default_pipeline("ref"));
    pm.run(m);
    return std::make_unique<RefExecutor>(m);
  }
  if (t == "cpu") return cpu_executor_for_module(m, opts);
  if (is_vulkan_target(t)) {
    const int device = vulkan_device_index(t);
#ifdef NIBBLE_HAVE_VULKAN
    return std::make_unique<VulkanTargetExecutor>(m, opts, device);
#else
    (void)device;
    fail("--target {}: this nibble was built without Vulkan", t);
#endif
  }
  fail("unknown target '{}' (expected ref, cpu, vulkan or vulkan:N)", t);
}

}  // namespace nibble::tools
