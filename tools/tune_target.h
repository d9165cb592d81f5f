// What `nibble tune` does differently per target (docs/tuning.md): kernel signatures, the heuristic
// schedule, the candidates of its two search stages and how a one-kernel module is compiled. The
// search itself (tools/tune_search.h) and the command (tools/cmd_tune.cpp) are the same for all.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ir/dtype.h"
#include "ir/ir.h"
#include "passes/tuning.h"
#include "tools/executor.h"

namespace nibble::tools {

// One distinct kernel signature of a model: what tune measures on a module of its shape.
struct TuneKernel {
  std::string sig, label;  // label: "q4_0 288x768 rows_x4" (format, N x K, the CPU layout)
  DType weight = DType::F32;
  int64_t N = 0, K = 0;
  bool dynamic_m = true;  // M follows n_tokens (path=gemv+gemm): the only products tuned
  KernelSchedule heuristic;
  int ops = 0;  // qmatmuls of the model with this signature
};

class TuneTarget {
 public:
  virtual ~TuneTarget() = default;
  virtual std::string target() const = 0;  // cpu, vulkan, vulkan:N (device_fingerprint's argument)
  virtual std::string about() const = 0;   // for the first progress line: "2 threads", the device
  // The pass pipeline the model and the one-kernel modules go through ("cpu", "vulkan").
  virtual std::string pipeline() const = 0;
  // What a candidate is compiled with (target, threads, device); tune adds max_tokens and tuning.
  virtual ExecutorOptions executor_options() const = 0;
  // After the pipeline (without a tuning table): the qmatmul's signature and its heuristic schedule.
  virtual std::string signature(const Module& m, const Op& qmatmul) const = 0;
  virtual KernelSchedule heuristic(const Op& qmatmul) const = 0;
  // Stage 1 (timed on 1-token calls): the decode kernel's parameters varied, the prefill ones the
  // heuristic's; nearest the heuristic first (built first when the budget is short), without it.
  virtual std::vector<KernelSchedule> decode_candidates(const TuneKernel& k) const = 0;
  // Stage 2 (timed on prefill calls): best_decode's decode parameters with each prefill variant.
  // Prefill parameters leave the decode kernel as it is (its times are carried over).
  virtual std::vector<KernelSchedule> prefill_candidates(const TuneKernel& k, const KernelSchedule& best_decode) const = 0;
  // Whether schedule s's kernels for an n-token call compute on the activations the compiled module
  // quantizes (then the reference executor runs the compiled module), else on f32 activations (then
  // it runs the module as built).
  virtual bool quantized_activations(const TuneKernel& k, const KernelSchedule& s, int n_tokens) const = 0;
  // How schedules print in tune's table, and the legend under it.
  virtual std::string schedule_str(const KernelSchedule& s) const = 0;
  virtual std::string legend() const = 0;
};

// cpu (threads: 0 = all cores), vulkan or vulkan:N (threads unused). Throws nibble::Error for other
// targets, or a Vulkan device that is not there.
std::unique_ptr<TuneTarget> make_tune_target(const std::string& target, int threads);

// Kept separate so each target's file holds only its own choices.
std::unique_ptr<TuneTarget> make_cpu_tune_target(int threads);
#ifdef NIBBLE_HAVE_VULKAN
// activations: ExecutorOptions::vulkan_activations ("auto" as nibble tune runs; tests force "q8").
std::unique_ptr<TuneTarget> make_vulkan_tune_target(const std::string& target, const std::string& activations = "auto");
#endif

// The distinct signatures of a module after target.pipeline(), in first-seen order.
std::vector<TuneKernel> kernels_of(const Module& m, const TuneTarget& target);

}  // namespace nibble::tools
