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

 private:
  Interpreter interp_;
  std::vector<float> logits_;
};

class CpuTargetExecutor : public Executor {
 public:
  CpuTargetExecutor(Module& m, const ExecutorOptions& opts) {
    auto t0 = Clock::now();
    cpu::CpuJit::Options jo;
    jo.cache_dir = opts.cache_dir.empty() ? default_cache_dir() : opts.cache_dir;
    jit_ = std::make_unique<cpu::CpuJit>(jo);
    PassOptions po = host_pass_options("cpu", opts.threads, opts.max_tokens);
    const int threads = po.threads;
    PassManager pm(po);
    pm.add_pipeline(default_pipeline("cpu"));
    pm.run(m);
    passes_ms_ = ms_since(t0);
    auto t1 = Clock::now();
    compiled_ = cpu::lower_to_cpu_plan(m, *jit_);
    jit_->compile();
    jit_ms_ = ms_since(t1);
    exec_ = std::make_unique<rt::CpuExecutor>(
        compiled_->plan, [this](const std::string& s) { return jit_->lookup(s); }, threads);
    exec_->set_profiling(opts.profile);
    exec_->set_poison(opts.poison);
    n_vocab_ = exec_->n_vocab();
    n_ctx_ = exec_->n_ctx();
  }
  std::span<const float> forward(std::span<const int32_t> tokens, std::span<const int32_t> pos) override {
    check_lengths(tokens, pos);
    return chunked(tokens, pos, exec_->max_tokens(), n_vocab_, gathered_,
                   [&](const int32_t* t, const int32_t* p, int64_t n) { return exec_->forward(t, p, n); });
  }
  void reset() override { exec_->reset(); }
  std::string profile_report() const override { return exec_->profiling() ? exec_->profile_report() : ""; }
  std::string describe() const override {
    const cpu::HostCpu& h = jit_->target();
    cpu::JitStats s = jit_->stats();
    return fmt::format("target cpu ({}, {}-bit vectors{}{}), {} threads; passes {:.0f} ms, kernels {:.0f} ms ({} JIT, "
                       "{} from cache), arena {:.1f} MiB",
                       h.name, h.vector_bits(), h.avx512vnni ? ", avx512-vnni" : "", h.avxvnni ? ", avx-vnni" : "",
                       exec_->threads(), passes_ms_, jit_ms_, s.kernels - s.cache_hits, s.cache_hits,
                       double(compiled_->plan.arena_bytes) / (1 << 20));
  }

 private:
  std::unique_ptr<cpu::CpuJit> jit_;
  std::unique_ptr<cpu::CompiledCpuModel> compiled_;
  std::unique_ptr<rt::CpuExecutor> exec_;
  std::vector<float> gathered_;
  double passes_ms_ = 0, jit_ms_ = 0;
};

#ifdef NIBBLE_HAVE_VULKAN
class VulkanTargetExecutor : public Executor {
 public:
  VulkanTargetExecutor(Module& m, const ExecutorOptions& opts, int device) {
    PassManager pm(host_pass_options("vulkan", opts.threads, opts.max_tokens));
    pm.add_pipeline(default_pipeline("vulkan"));
    pm.run(m);
    vk::VulkanOptions vo;
    vo.device = device;
    vo.max_tokens = opts.max_tokens;
    vo.profile = profile_ = opts.profile;
    vo.poison = opts.poison;
    vo.validation = opts.validation;
    if (opts.vulkan_activations == "q8")
      vo.compile.quantized_activations = vk::ActivationQuant::On;
    else if (opts.vulkan_activations == "f32")
      vo.compile.quantized_activations = vk::ActivationQuant::Off;
    else if (opts.vulkan_activations != "auto")
      fail("vulkan activations '{}': expected auto, q8 or f32", opts.vulkan_activations);
    model_ = vk::VulkanModel::create(m, vo);
    n_vocab_ = model_->n_vocab();
    n_ctx_ = model_->n_ctx();
  }
  std::span<const float> forward(std::span<const int32_t> tokens, std::span<const int32_t> pos) override {
    check_lengths(tokens, pos);
    return chunked(tokens, pos, model_->max_tokens(), n_vocab_, gathered_,
                   [&](const int32_t* t, const int32_t* p, int64_t n) { return model_->executor().forward(t, p, n); });
  }
  void reset() override { model_->reset(); }
  std::string profile_report() const override { return profile_ ? model_->profile_report() : ""; }
  std::string describe() const override { return "target vulkan: " + model_->describe(); }
  std::vector<std::string> take_messages() override {
    return model_->context() ? model_->context()->take_messages() : std::vector<std::string>{};
  }

 private:
  std::unique_ptr<vk::VulkanModel> model_;
  std::vector<float> gathered_;
  bool profile_ = false;
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

std::unique_ptr<Executor> make_executor(Module& m, const ExecutorOptions& opts) {
  const std::string& t = opts.target;
  if (t == "ref") {
    PassManager pm(PassOptions{});
    pm.add_pipeline(default_pipeline("ref"));
    pm.run(m);
    return std::make_unique<RefExecutor>(m);
  }
  if (t == "cpu") return std::make_unique<CpuTargetExecutor>(m, opts);
  if (t == "vulkan" || t.starts_with("vulkan:")) {
    int device = 0;
    if (t.size() > 7) {
      char* end = nullptr;
      long d = std::strtol(t.c_str() + 7, &end, 10);
      if (*end || d < 0 || d > 1000) fail("--target {}: expected vulkan:N with N a device index", t);
      device = int(d);
    }
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
