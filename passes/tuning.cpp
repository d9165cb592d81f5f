#include "passes/tuning.h"

#include <fmt/format.h>

#include "ir/dtype.h"

namespace nibble {

std::string tuning_signature(const Module& m, const Op& op, int threads) {
  const TensorType& a = op.operand(0)->type;
  const TensorType& w = op.operand(1)->type;
  std::string layout = "rows";
  if (const Op* def = op.operand(1)->def; def && def->op_name() == "weight")
    if (auto ref = def->attrs.get_symbol("ref"))
      if (const WeightDecl* d = m.find_weight(*ref)) layout = d->attrs.string_or("layout", "rows");
  bool symbolic_m = false;
  int64_t static_m = 1;
  for (int i = 0; i + 1 < a.rank(); ++i) {
    symbolic_m |= !a.dims[i].is_static();
    static_m *= a.dims[i].is_static() ? a.dims[i].value : 1;
  }
  const std::string path = symbolic_m ? std::string("gemv+gemm")
                                      : fmt::format("{} M={}", static_m >= 4 ? "gemm" : "gemv", static_m);
  return fmt::format("qmatmul {} act={} N={} K={} layout={} path={} threads={}", dtype_name(w.dtype),
                     dtype_name(a.dtype), w.dims[0].value, w.dims[1].value, layout, path, std::max(1, threads));
}

std::string validate_tuned(const TunedSchedule& s) {
  if (s.rows_per_task < 16 || s.rows_per_task % 16 != 0)
    return fmt::format("rows_per_task {} is not a positive multiple of 16", s.rows_per_task);
  if (s.k_unroll < 1 || s.k_unroll > 8) return fmt::format("k_unroll {} is not in [1, 8]", s.k_unroll);
  if (s.m_tile < 1 || s.m_tile > 16) return fmt::format("m_tile {} is not in [1, 16]", s.m_tile);
  return "";
}

}  // namespace nibble
