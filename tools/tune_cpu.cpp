// nibble tune --target cpu: the CPU qmatmul schedules (rows_per_task, k_unroll, m_tile; select-tiles).
//   1. decode: rows_per_task (multiples of 16: 16, 32, 64, ... up to N, and the heuristic's) x
//      k_unroll (1, 2, 4); the gemv kernel uses only these two.
//   2. prefill: the best of 1 with m_tile 1, 2, 4, 8 (the gemm variant's activation rows).
// The signature includes the thread count, so candidates run on exactly that many threads.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "tools/tune_target.h"

namespace nibble::tools {

namespace {

class CpuTuneTarget : public TuneTarget {
 public:
  explicit CpuTuneTarget(int threads) : threads_(host_pass_options("cpu", threads, 512).threads) {}

  std::string target() const override { return "cpu"; }
  std::string about() const override { return fmt::format("{} threads", threads_); }
  std::string pipeline() const override { return "cpu"; }
  ExecutorOptions executor_options() const override {
    ExecutorOptions eo;
    eo.target = "cpu";
    eo.threads = threads_;
    return eo;
  }
  std::string signature(const Module& m, const Op& op) const override { return tuning_signature(m, op, threads_); }
  KernelSchedule heuristic(const Op& op) const override {
    return TunedSchedule{op.attrs.int_or("rows_per_task", 16), op.attrs.int_or("k_unroll", 1),
                         op.attrs.int_or("m_tile", 4)};
  }

  std::vector<KernelSchedule> decode_candidates(const TuneKernel& k) const override {
    const TunedSchedule& h = std::get<TunedSchedule>(k.heuristic);
    std::vector<KernelSchedule> out;
    for (int64_t r : rows_candidates(k.N, h.rows_per_task))
      for (int64_t u : {int64_t(1), int64_t(2), int64_t(4)}) {
        const TunedSchedule s{r, u, h.m_tile};
        if (!(s == h)) out.push_back(s);
      }
    return out;
  }

  std::vector<KernelSchedule> prefill_candidates(const TuneKernel& k, const KernelSchedule& best_decode) const override {
    const TunedSchedule& b = std::get<TunedSchedule>(best_decode);
    std::vector<KernelSchedule> out;
    for (int64_t mt : {int64_t(1), int64_t(2), int64_t(4), int64_t(8)}) out.push_back(TunedSchedule{b.rows_per_task, b.k_unroll, mt});
    return out;
  }

  // The CPU quantizes activations exactly as its compiled module says.
  bool quantized_activations(const TuneKernel&, const KernelSchedule&, int) const override { return true; }

  std::string schedule_str(const KernelSchedule& s) const override {
    const TunedSchedule& t = std::get<TunedSchedule>(s);
    return fmt::format("{}/{}/{}", t.rows_per_task, t.k_unroll, t.m_tile);
  }
  std::string legend() const override { return "schedules: rows_per_task/k_unroll/m_tile"; }

 private:
  // 16 x powers of two up to N (rounded up to 16), the heuristic's, N; nearest to the heuristic first.
  static std::vector<int64_t> rows_candidates(int64_t N, int64_t heuristic) {
    const int64_t top = (N + 15) / 16 * 16;
    std::vector<int64_t> r;
    for (int64_t v = 16; v < top; v *= 2) r.push_back(v);
    r.push_back(top);
    r.push_back(std::min(heuristic, top));
    std::sort(r.begin(), r.end());
    r.erase(std::unique(r.begin(), r.end()), r.end());
    const double h = std::log2(double(std::max<int64_t>(16, heuristic)));
    std::stable_sort(r.begin(), r.end(), [&](int64_t a, int64_t b) {
      return std::fabs(std::log2(double(a)) - h) < std::fabs(std::log2(double(b)) - h);
    });
    return r;
  }

  int threads_;
};

}  // namespace

std::unique_ptr<TuneTarget> make_cpu_tune_target(int threads) { return std::make_unique<CpuTuneTarget>(threads); }

}  // namespace nibble::tools
