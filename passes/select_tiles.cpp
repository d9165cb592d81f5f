// select-tiles: the schedule of each qmatmul, from a small cost model over PassOptions.
//
// A qmatmul is memory bound on its weight (decode reads every weight byte once per token), so the
// model optimises the weight stream:
//   rows_per_task: weight rows one task computes (tasks = ceil(N / rows_per_task), split across
//       threads). The largest count that
//         - leaves >= 8 tasks per thread (N / (8 * threads)), so dynamic splitting balances load, and
//         - keeps a task's weight rows in half the L2 (l2_bytes / 2; the rest holds the m_tile
//           activation rows, the outputs and the next task's prefetch),
//       rounded down to a multiple of 16 rows, and at least 16 (small matrices then get fewer
//       tasks). 16 is the CPU kernels' tallest row tile and a multiple of every layout's row group,
//       so task boundaries never split a tile: a row is computed by the same tile, with the same
//       summation order, whatever the thread count, and results do not depend on it.
//       A weight under PassOptions.min_split_weight_bytes (64 KiB) is one task: its product takes about a microsecond, less than
//       handing work to another thread (and far less when the other core is busy and the hand-off
//       waits for a time slice).
//   k_unroll: 2 when K >= 1024 (two accumulators hide the FMA/dot latency over a long row), else 1.
//   vector_bits: PassOptions.vector_bits (the widest vectors worth using on the target CPU).
//   m_tile: activation rows per weight-row pass in the gemm variant: 8 for quantized weights on
//       AVX512-VNNI at 512 bits (the 16-row panel path: 8 tokens x 16 rows keep every accumulator
//       in the 32 registers; measured on q4_0 / q4_k / q6_k at 128x4096x4096, 8 is within 3% of
//       the best of 4, 8, 12, 16 for each), else 4 (4 x rows accumulators fit the register file at
//       every vector width).
//   path: "gemv" when M (the activation rows: leading dims of a) depends on n_tokens, with
//       gemm_from = 4: codegen builds both variants and runs the gemm one when n_tokens >=
//       gemm_from (prefill) and the gemv one below (decode). A static M gets "gemm" when
//       M >= gemm_from, else "gemv", and no gemm_from.
// Tuned schedules: when PassOptions.tuning (a table from `nibble tune`'s database for this device)
// has an entry for the op's tuning_signature (passes/tuning.h: format, activation type, N, K, layout,
// path, threads), its rows_per_task, k_unroll and m_tile replace the heuristic's and the op gets
// `tuned = true`. Entries that break the constraints above (rows_per_task a positive multiple of 16,
// k_unroll in [1, 8], m_tile in [1, 16]) are ignored; rows_per_task is capped at N rounded up to 16.
// Vulkan: the attributes above are the same model's (GPU kernels do not read them); the GPU tiles
// are the device's (vk::tiles_for in codegen) unless the table has an entry for the op's
// vulkan_tuning_signature: its VulkanTiles are recorded as vk_* attributes (set_vulkan_tiles,
// passes/tuning.h) with `tuned = true`; entries that validate_tuned refuses are ignored.
// Other row-parallel ops need no schedule.
#include <algorithm>

#include "passes/pass.h"

namespace nibble {

namespace {

constexpr int64_t kTasksPerThread = 8;
constexpr int64_t kRowQuantum = 16;
constexpr int64_t kMTile = 4;
constexpr int64_t kMTilePanel = 8;
constexpr int64_t kGemmFrom = 4;


class SelectTiles : public Pass {
 public:
  void run(Module& m, const PassOptions& opts) override {
    const int64_t threads = std::max(1, opts.threads);
    const bool vulkan = opts.target == "vulkan" || opts.target.starts_with("vulkan:");
    for (auto& f : m.functions)
      for (auto& op : f->ops) {
        if (op->op_name() != "qmatmul") continue;
        const Value* a = op->operand(0);
        const TensorType& w = op->operand(1)->type;
        const int64_t n = w.dims[0].value, k = w.dims[1].value;

        const int64_t by_tasks = n / (kTasksPerThread * threads);
        const int64_t by_l2 = std::max<int64_t>(1, opts.l2_bytes / 2 / std::max<int64_t>(1, row_bytes(w.dtype, k)));
        int64_t rows = std::min(by_tasks, by_l2) / kRowQuantum * kRowQuantum;
        rows = std::max(rows, kRowQuantum);
        if (n * row_bytes(w.dtype, k) < opts.min_split_weight_bytes) rows = (n + kRowQuantum - 1) / kRowQuantum * kRowQuantum;

        // M: the activation rows, symbolic when any leading dim is.
        bool symbolic_m = false;
        int64_t static_m = 1;
        for (int i = 0; i + 1 < a->type.rank(); ++i) {
          symbolic_m |= !a->type.dims[i].is_static();
          static_m *= a->type.dims[i].is_static() ? a->type.dims[i].value : 1;
        }

        op->attrs.set("rows_per_task", rows);
        op->attrs.set("k_unroll", int64_t(k >= 1024 ? 2 : 1));
        op->attrs.set("vector_bits", int64_t(opts.vector_bits));
        const bool panel = opts.target == "cpu" && dtype_info(w.dtype).quantized && opts.vector_bits >= 512 &&
                           opts.cpu_features.count("avx512vnni");
        const int64_t m_tile = panel ? kMTilePanel : kMTile;
        op->attrs.set("m_tile", m_tile);
        op->attrs.erase("gemm_from");
        if (symbolic_m) {
          op->attrs.set("path", std::string("gemv"));
          op->attrs.set("gemm_from", kGemmFrom);
        } else {
          op->attrs.set("path", std::string(static_m >= kGemmFrom ? "gemm" : "gemv"));
        }

        op->attrs.erase("tuned");
        clear_vulkan_tiles(*op);
        if (!opts.tuning) continue;
        if (vulkan) {
          auto it = opts.tuning->by_signature.find(vulkan_tuning_signature(*op));
          if (it == opts.tuning->by_signature.end()) continue;
          const VulkanTiles* t = std::get_if<VulkanTiles>(&it->second);
          if (!t || !validate_tuned(*t).empty()) continue;
          set_vulkan_tiles(*op, *t);
          op->attrs.set("tuned", true);
        } else {
          auto it = opts.tuning->by_signature.find(tuning_signature(m, *op, int(threads)));
          if (it == opts.tuning->by_signature.end()) continue;
          const TunedSchedule* t = std::get_if<TunedSchedule>(&it->second);
          if (!t || !validate_tuned(*t).empty()) continue;
          op->attrs.set("rows_per_task", std::min(t->rows_per_task, (n + kRowQuantum - 1) / kRowQuantum * kRowQuantum));
          op->attrs.set("k_unroll", t->k_unroll);
          op->attrs.set("m_tile", t->m_tile);
          op->attrs.set("tuned", true);
        }
      }
  }
};

}  // namespace

extern const PassInfo kSelectTilesPass = {
    "select-tiles", "chooses each qmatmul's schedule (rows per task, unroll, vector width, gemv/gemm path)",
    [] { return std::make_unique<SelectTiles>(); }};

}  // namespace nibble
