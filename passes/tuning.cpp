#include "passes/tuning.h"

#include <fmt/format.h>

#include "ir/dtype.h"
#include "support/error.h"

namespace nibble {

namespace {

// "gemv+gemm" when M (the activation rows: leading dims of a) depends on n_tokens, else the static
// M's kernel.
std::string path_of(const Op& op) {
  const TensorType& a = op.operand(0)->type;
  bool symbolic_m = false;
  int64_t static_m = 1;
  for (int i = 0; i + 1 < a.rank(); ++i) {
    symbolic_m |= !a.dims[i].is_static();
    static_m *= a.dims[i].is_static() ? a.dims[i].value : 1;
  }
  return symbolic_m ? std::string("gemv+gemm") : fmt::format("{} M={}", static_m >= 4 ? "gemm" : "gemv", static_m);
}

// "qmatmul q4_0 act=q8_0 N=288 K=768": what both targets' signatures start with.
std::string shape_of(const Op& op) {
  const TensorType& w = op.operand(1)->type;
  return fmt::format("qmatmul {} act={} N={} K={}", dtype_name(w.dtype), dtype_name(op.operand(0)->type.dtype),
                     w.dims[0].value, w.dims[1].value);
}

// "qmatmul %name", or by its weight when unnamed: "qmatmul of @blk.0.attn_q.weight".
std::string op_ref(const Op& op) {
  if (!op.name.empty()) return fmt::format("{} %{}", op.op_name(), op.name);
  if (op.num_operands() > 1)
    if (const Op* def = op.operand(1)->def; def && def->op_name() == "weight")
      if (auto ref = def->attrs.get_symbol("ref")) return fmt::format("{} of @{}", op.op_name(), *ref);
  return op.op_name();
}

bool pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

constexpr const char* kWg = "vk_gemv_wg";
constexpr const char* kRows = "vk_gemv_rows";
constexpr const char* kBatch = "vk_batch";
constexpr const char* kBatchTokens = "vk_batch_tokens";
constexpr const char* kGemm = "vk_gemm_tiles";

}  // namespace

bool VulkanTiles::operator==(const VulkanTiles& o) const {
  if (gemv_wg != o.gemv_wg || gemv_rows != o.gemv_rows || batch != o.batch) return false;
  return batch == "gemm" ? gemm == o.gemm : batch_tokens == o.batch_tokens;
}

std::string tuning_signature(const Module& m, const Op& op, int threads) {
  std::string layout = "rows";
  if (const Op* def = op.operand(1)->def; def && def->op_name() == "weight")
    if (auto ref = def->attrs.get_symbol("ref"))
      if (const WeightDecl* d = m.find_weight(*ref)) layout = d->attrs.string_or("layout", "rows");
  return fmt::format("{} layout={} path={} threads={}", shape_of(op), layout, path_of(op), std::max(1, threads));
}

std::string tuned_op_ref(const Op& op) { return op_ref(op); }

std::string vulkan_tuning_signature(const Op& op) {
  return fmt::format("{} path={} target=vulkan", shape_of(op), path_of(op));
}

std::string validate_tuned(const TunedSchedule& s) {
  if (s.rows_per_task < 16 || s.rows_per_task % 16 != 0)
    return fmt::format("rows_per_task {} is not a positive multiple of 16", s.rows_per_task);
  if (s.k_unroll < 1 || s.k_unroll > 8) return fmt::format("k_unroll {} is not in [1, 8]", s.k_unroll);
  if (s.m_tile < 1 || s.m_tile > 16) return fmt::format("m_tile {} is not in [1, 16]", s.m_tile);
  return "";
}

std::string validate_tuned(const VulkanTiles& t) {
  if (!pow2(t.gemv_wg) || t.gemv_wg > 1024) return fmt::format("gemv_wg {} is not a power of two in [1, 1024]", t.gemv_wg);
  if (t.gemv_rows < 1 || t.gemv_rows > 64) return fmt::format("gemv_rows {} is not in [1, 64]", t.gemv_rows);
  if (t.batch == "gemv") {
    if (t.batch_tokens < 1 || t.batch_tokens > 64) return fmt::format("batch_tokens {} is not in [1, 64]", t.batch_tokens);
    return "";
  }
  if (t.batch != "gemm") return fmt::format("batch '{}' is not gemv or gemm", t.batch);
  const auto [bm, bn, bk, tm, tn] = t.gemm;
  if (bm < 1 || bn < 1 || bk < 1 || tm < 1 || tn < 1 || bm > 1024 || bn > 1024 || bk > 1024)
    return fmt::format("gemm tiles {}x{}x{} t{}x{} are not positive (at most 1024)", bm, bn, bk, tm, tn);
  if (bk % 32) return fmt::format("gemm bk {} is not a multiple of 32", bk);
  if (bm % tm || bn % tn) return fmt::format("gemm tiles {}x{} are not multiples of t{}x{}", bm, bn, tm, tn);
  return "";
}

std::string validate_tuned(const KernelSchedule& s) {
  return std::visit([](const auto& x) { return validate_tuned(x); }, s);
}

void set_vulkan_tiles(Op& op, const VulkanTiles& t) {
  clear_vulkan_tiles(op);
  op.attrs.set(kWg, t.gemv_wg);
  op.attrs.set(kRows, t.gemv_rows);
  op.attrs.set(kBatch, t.batch);
  if (t.batch == "gemm")
    op.attrs.set(kGemm, std::vector<int64_t>(t.gemm.begin(), t.gemm.end()));
  else
    op.attrs.set(kBatchTokens, t.batch_tokens);
}

void clear_vulkan_tiles(Op& op) {
  for (const char* k : {kWg, kRows, kBatch, kBatchTokens, kGemm}) op.attrs.erase(k);
}

std::optional<VulkanTiles> vulkan_tiles_of(const Op& op) {
  if (!op.attrs.has(kWg) && !op.attrs.has(kRows) && !op.attrs.has(kBatch)) return std::nullopt;
  auto need_int = [&](const char* k) {
    std::optional<int64_t> v = op.attrs.get_int(k);
    if (!v) fail("{}: Vulkan tiles without an integer {}", op_ref(op), k);
    return *v;
  };
  VulkanTiles t;
  t.gemv_wg = need_int(kWg);
  t.gemv_rows = need_int(kRows);
  std::optional<std::string> batch = op.attrs.get_string(kBatch);
  if (!batch) fail("{}: Vulkan tiles without a string {}", op_ref(op), kBatch);
  t.batch = *batch;
  if (t.batch == "gemm") {
    std::optional<std::vector<int64_t>> g = op.attrs.get_ints(kGemm);
    if (!g || g->size() != 5) fail("{}: {} must be [bm, bn, bk, tm, tn]", op_ref(op), kGemm);
    std::copy(g->begin(), g->end(), t.gemm.begin());
  } else {
    t.batch_tokens = need_int(kBatchTokens);
  }
  if (std::string why = validate_tuned(t); !why.empty()) fail("{}: Vulkan tiles: {}", op_ref(op), why);
  return t;
}

}  // namespace nibble
