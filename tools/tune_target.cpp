#include "tools/tune_target.h"

#include <algorithm>

#include <fmt/format.h>

#include "support/error.h"

namespace nibble::tools {

std::unique_ptr<TuneTarget> make_tune_target(const std::string& target, int threads) {
  if (target == "cpu") return make_cpu_tune_target(threads);
  if (is_vulkan_target(target)) {
#ifdef NIBBLE_HAVE_VULKAN
    return make_vulkan_tune_target(target);
#else
    fail("tune --target {}: this nibble was built without Vulkan", target);
#endif
  }
  fail("tune --target {}: expected cpu, vulkan or vulkan:N", target);
}

std::vector<TuneKernel> kernels_of(const Module& m, const TuneTarget& target) {
  std::vector<TuneKernel> out;
  for (const auto& f : m.functions)
    for (const auto& op : f->ops) {
      if (op->op_name() != "qmatmul") continue;
      const std::string sig = target.signature(m, *op);
      auto it = std::find_if(out.begin(), out.end(), [&](const TuneKernel& k) { return k.sig == sig; });
      if (it != out.end()) {
        ++it->ops;
        continue;
      }
      TuneKernel k;
      k.sig = sig;
      const TensorType& w = op->operand(1)->type;
      k.weight = w.dtype;
      k.N = w.dims[0].value;
      k.K = w.dims[1].value;
      k.dynamic_m = sig.find("path=gemv+gemm") != std::string::npos;
      k.heuristic = target.heuristic(*op);
      k.ops = 1;
      k.label = fmt::format("{} {}x{}", dtype_name(k.weight), k.N, k.K);
      if (const size_t lay = sig.find("layout="); lay != std::string::npos)
        k.label += " " + sig.substr(lay + 7, sig.find(' ', lay) - lay - 7);
      out.push_back(k);
    }
  return out;
}

}  // namespace nibble::tools
