#include "codegen/spirv/vulkan_compile.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "ir/row_shape.h"
#include "support/error.h"

namespace nibble::vk {

ShaderFeatures select_features(const DeviceInfo& d, const FeatureOverrides& o) {
  auto pick = [&](const std::optional<bool>& force, bool has, const char* what) {
    if (force && *force && !has) fail("vulkan: {} was requested but device {} does not support it", what, d.name);
    return force ? *force : has;
  };
  ShaderFeatures f;
  f.subgroup = pick(o.subgroup, d.subgroup_basic && d.subgroup_arithmetic, "subgroup arithmetic");
  f.storage16 = pick(o.storage16, d.storage16, "16-bit storage");
  f.storage8 = pick(o.storage8, d.storage8, "8-bit storage");
  f.float16 = pick(o.float16, d.float16, "shaderFloat16");
  f.int_dot = pick(o.int_dot, d.int_dot, "integer dot product");
  return f;
}

void tiles_for(const DeviceInfo& d, VulkanCompileOptions& o) {
  if (d.type == "cpu") {
    o.gemv = {std::max<uint32_t>(d.subgroup_size, 8), 8, 1};
    o.gemm = {128, 64, 32, 8, 8};
    o.batch = VulkanCompileOptions::Batch::MultiTokenGemv;
    o.batch_tokens = 8;
  } else {
    // Measured on an H100 (bench/RESULTS.md: workgroups 32..256 x rows 1..8, 14336 x 4096): 4 rows
    // per 64-invocation workgroup streams q4_k/q4_0/q8_0 weights 1.2x faster than 2 rows.
    o.gemv = {64, 4, 1};
    o.gemm = {64, 64, 32, 4, 4};
    o.batch = VulkanCompileOptions::Batch::TiledGemm;
  }
  // Shared memory of the GEMM tiles must fit the device.
  GemmTiles& g = o.gemm;
  while ((g.bk * (g.bm + 1) + g.bk * (g.bn + 1)) * 4 > d.max_shared_bytes && g.bm > 32 && d.max_shared_bytes > 0)
    g.bm /= 2;
}

VulkanTiles device_tiles(const VulkanCompileOptions& o) {
  VulkanCompileOptions t = o;
  if (t.auto_tiles) tiles_for(t.device, t);
  VulkanTiles v;
  v.gemv_wg = t.gemv.wg;
  v.gemv_rows = t.gemv.rows;
  v.batch = t.batch == VulkanCompileOptions::Batch::MultiTokenGemv ? "gemv" : "gemm";
  v.batch_tokens = t.batch_tokens;
  v.gemm = {t.gemm.bm, t.gemm.bn, t.gemm.bk, t.gemm.tm, t.gemm.tn};
  return v;
}

VulkanTiles qmatmul_tiles(const Op& op, const VulkanCompileOptions& o) {
  if (std::optional<VulkanTiles> t = vulkan_tiles_of(op)) return *t;
  return device_tiles(o);
}

std::string tiles_fit(const VulkanTiles& t, const DeviceInfo& d) {
  if (std::string why = validate_tuned(t); !why.empty()) return why;
  const auto invocations = [&](int64_t n) -> std::string {
    if (d.max_workgroup_invocations && n > int64_t(d.max_workgroup_invocations))
      return fmt::format("{} invocations per workgroup, the device allows {}", n, d.max_workgroup_invocations);
    if (d.max_workgroup_size_x && n > int64_t(d.max_workgroup_size_x))
      return fmt::format("a workgroup {} wide, the device allows {}", n, d.max_workgroup_size_x);
    return "";
  };
  const auto shared = [&](int64_t bytes, const char* what) -> std::string {
    if (d.max_shared_bytes && bytes > int64_t(d.max_shared_bytes))
      return fmt::format("{} needs {} bytes of shared memory, the device has {}", what, bytes, d.max_shared_bytes);
    return "";
  };
  // Shared memory as the kernels declare it (kernels.cpp: gred, Ws/As).
  const int64_t tokens = t.batch == "gemv" ? std::max<int64_t>(t.batch_tokens, 1) : 1;
  std::string why = invocations(t.gemv_wg);
  if (why.empty()) why = shared(t.gemv_rows * tokens * t.gemv_wg * 4, "the GEMV");
  if (why.empty() && t.batch == "gemm") {
    const auto [bm, bn, bk, tm, tn] = t.gemm;
    why = invocations((bm / tm) * (bn / tn));
    if (why.empty()) why = shared((bk * (bm + 1) + bk * (bn + 1)) * 4, "the GEMM");
  }
  return why;
}

namespace {

RowCount rows_of(const TensorType& t) { return nibble::rows_of(t, "vulkan codegen"); }
int64_t cols_of(const TensorType& t) { return nibble::cols_of(t, "vulkan codegen"); }

bool has_tokens(const TensorType& t) {
  for (const Dim& d : t.dims)
    if (!d.is_static()) return true;
  return false;
}

// Bytes of a tensor: fixed, or per token when it has the n_tokens dim.
struct Bytes {
  double fixed = 0, per_token = 0;
};

Bytes bytes_of(const TensorType& t) {
  int64_t elems = t.static_elements();
  int64_t bs = dtype_info(t.dtype).block_size;
  double b = double(elems / bs) * dtype_info(t.dtype).bytes_per_block;
  return has_tokens(t) ? Bytes{0, b} : Bytes{b, 0};
}

uint32_t fbits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

GroupCount rows_groups(const RowCount& r, int64_t div = 1) {
  if (r.per_token) return {0, r.fixed, div};
  return {(r.fixed + div - 1) / div, 0, 1};
}

GroupCount fixed_groups(int64_t n) { return {n, 0, 1}; }

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The GPU-private layout of quantized activations (kernels.h, quantize_kernel).
struct Q8Layout {
  uint64_t s_off = 0, i_off = 0, q_off = 0, bytes = 0;
};

Q8Layout q8_layout(DType act, int64_t K, int64_t rows_max) {
  const uint64_t nb = uint64_t(K / 32), r = uint64_t(rows_max);
  Q8Layout l;
  l.s_off = r * nb * 4;
  l.i_off = l.s_off + (act == DType::Q8_1 ? r * nb * 4 : 0);
  l.q_off = (l.i_off + r * nb * 4 + 15) / 16 * 16;
  l.bytes = l.q_off + r * uint64_t(K);
  return l;
}

class Lowering {
 public:
  Lowering(const Module& m, const VulkanCompileOptions& o, VulkanCompiled& out)
      : m_(m), o_(o), out_(out), plan_(out.plan) {}

  void run() {
    f_ = out_.features = select_features(o_.device, o_.features);
    t_ = o_;
    if (o_.auto_tiles) tiles_for(o_.device, t_);
    const GemmTiles& gemm_ = t_.gemm;
    if (gemm_.wg() > std::max<uint32_t>(o_.device.max_workgroup_invocations, 1) && o_.device.max_workgroup_invocations)
      fail("vulkan codegen: GEMM tiles need {} invocations, device allows {}", gemm_.wg(),
           o_.device.max_workgroup_invocations);
    const Function* f = const_cast<Module&>(m_).find_function("forward");
    if (!f) fail("vulkan codegen: module @{} has no @forward function", m_.name);
    if (f->args.size() != 2) fail("vulkan codegen: @forward must take (%tokens, %pos)");
    if (f->results.empty()) fail("vulkan codegen: @forward returns nothing");
    fn_ = f;
    refs_[f->args[0].get()] = {BufKind::Tokens, 0, 0, 0};
    refs_[f->args[1].get()] = {BufKind::Pos, 0, 0, 0};
    plan_.n_vocab = m_.attrs.int_or("n_vocab", 0);
    plan_.n_ctx = m_.attrs.int_or("n_ctx", 0);
    for (const StateDecl& s : m_.states) {
      state_index_[s.name] = uint32_t(plan_.states.size());
      plan_.states.push_back({s.name, uint64_t(row_bytes(s.type.dtype, s.type.num_elements()))});
      if (plan_.n_ctx == 0 && s.type.rank() == 3 && s.type.dims[0].is_static()) plan_.n_ctx = s.type.dims[0].value;
    }
    classify();
    plan_buffers();
    for (const auto& op : f->ops) lower(*op);
    for (const Value* r : f->results) {
      Output o;
      o.binding = ref(r);
      const int64_t elems = r->type.static_elements();
      (has_tokens(r->type) ? o.per_token_elems : o.fixed_elems) = elems;
      if (r->type.dtype != DType::F32 && r->type.dtype != DType::I32)
        fail("vulkan codegen: result %{} is {}, only f32/i32 results can be read back", r->name, r->type.str());
      o.is_i32 = r->type.dtype == DType::I32;
      plan_.outputs.push_back(o);
    }
    if (plan_.n_vocab == 0 && !plan_.outputs.empty()) plan_.n_vocab = vocab_from_embedding_;
  }

 private:
  // ---- Aliases and buffer planning.

  // What a value is on the GPU: its own arena buffer, or an alias of another value's memory.
  enum class Kind { Arena, Weight, State, Arg, Alias, LazyDequant };

  Kind kind(const Value* v) const {
    if (v->is_arg()) return Kind::Arg;
    const Op& op = *v->def;
    const std::string& n = op.op_name();
    if (n == "weight") return Kind::Weight;
    if (n == "state") return Kind::State;
    if (n == "quantize") return q8_.count(v) ? Kind::Arena : Kind::Alias;
    if (n == "reshape" || n == "kv_write") return Kind::Alias;
    if (n == "view" && op.attrs.int_or("axis", -1) == 0) return Kind::Alias;
    if (n == "dequant") return materialize_.count(v) ? Kind::Arena : Kind::LazyDequant;
    return Kind::Arena;
  }

  // Dequants of weights read only as a matmul's weight or an embedding table are never materialized.
  void classify() {
    for (const auto& op : fn_->ops) {
      for (int i = 0; i < op->num_operands(); ++i) {
        const Value* v = op->operand(i);
        if (!v->def || v->def->op_name() != "dequant") continue;
        const std::string& n = op->op_name();
        bool direct = (i == 1 && (n == "matmul" || n == "qmatmul")) || (i == 0 && n == "embedding");
        if (!direct) materialize_.insert(v);
      }
    }
    for (const Value* r : fn_->results)
      if (r->def && r->def->op_name() == "dequant") materialize_.insert(r);
    // Quantize on the GPU where every reader is a qmatmul with an integer-dot kernel.
    bool q8 = o_.quantized_activations == ActivationQuant::On ||
              (o_.quantized_activations == ActivationQuant::Auto && f_.int_dot && o_.device.int_dot_accelerated);
    if (!q8) return;
    std::unordered_map<const Value*, bool> ok;
    for (const auto& op : fn_->ops)
      if (op->op_name() == "quantize" && (op->type.dtype == DType::Q8_0 || op->type.dtype == DType::Q8_1))
        ok[op.get()] = true;
    for (const auto& op : fn_->ops)
      for (int i = 0; i < op->num_operands(); ++i) {
        auto it = ok.find(op->operand(i));
        if (it == ok.end()) continue;
        bool good = op->op_name() == "qmatmul" && i == 0 && q8_gemv_supported(source(op->operand(1))->type.dtype);
        if (!good) it->second = false;
      }
    for (const Value* r : fn_->results)
      if (ok.count(r)) ok[r] = false;
    for (auto [v, good] : ok)
      if (good) q8_.insert(v);
    if (!q8_.empty())
      out_.notes.push_back(fmt::format("{} quantize ops run on the GPU (integer dot products, {})", q8_.size(),
                                       f_.int_dot ? "OpSDot" : "emulated"));
  }

  int64_t rows_max(const TensorType& t, int64_t max_tokens) const {
    RowCount r = rows_of(t);
    return r.per_token ? r.fixed * max_tokens : r.fixed;
  }

  // The value whose memory `v` uses.
  const Value* root(const Value* v) const {
    while (kind(v) == Kind::Alias) v = v->def->op_name() == "kv_write" ? v->def->operand(0) : v->def->operand(0);
    return v;
  }

  uint64_t arena_size(const Value* v, int64_t max_tokens) const {
    const TensorType& t = v->type;
    if (q8_.count(v)) return q8_layout(t.dtype, cols_of(t), rows_max(t, max_tokens)).bytes;
    DType dt = t.dtype == DType::I32 ? DType::I32 : DType::F32;  // dequant results are f32
    int64_t elems = t.static_elements();
    if (has_tokens(t)) elems *= max_tokens;
    return uint64_t(row_bytes(dt, elems));
  }

  void plan_buffers() {
    const bool planned = m_.attrs.has("arena_bytes") && m_.attrs.int_or("max_tokens", 0) > 0;
    // plan-buffers gives quantize results their own memory and may reuse the f32 input's as soon as
    // the quantize has read it; aliasing quantize to that input needs a plan that knows it.
    bool aliased_quantize = false;
    for (const auto& op : fn_->ops) aliased_quantize = aliased_quantize || op->op_name() == "quantize";
    if (planned && aliased_quantize)
      out_.notes.push_back("quantize is an alias on the GPU (f32 activations): arena re-planned here");
    if (planned && !aliased_quantize) {
      bool complete = true;
      for (const auto& op : fn_->ops)
        if (kind(op.get()) == Kind::Arena && !op->attrs.get_int("arena_offset")) complete = false;
      if (complete) {
        plan_.max_tokens = m_.attrs.int_or("max_tokens", 0);
        plan_.arena_bytes = uint64_t(m_.attrs.int_or("arena_bytes", 0));
        for (const auto& op : fn_->ops)
          if (kind(op.get()) == Kind::Arena) {
            uint64_t off = uint64_t(*op->attrs.get_int("arena_offset"));
            if (off % 4) fail("vulkan codegen: %{} has arena_offset {} (not 4-byte aligned)", op->name, off);
            uint64_t size = arena_size(op.get(), plan_.max_tokens);
            if (off + size > plan_.arena_bytes)
              fail("vulkan codegen: %{} at arena_offset {} (+{} bytes) overflows arena_bytes {}", op->name, off, size,
                   plan_.arena_bytes);
            offsets_[op.get()] = off;
          }
        out_.notes.push_back(fmt::format("buffers from plan-buffers: {} bytes for {} tokens", plan_.arena_bytes,
                                         plan_.max_tokens));
        return;
      }
      out_.notes.push_back("plan-buffers left some ops without arena_offset: planning buffers here");
    }
    int64_t max_tokens = o_.max_tokens > 0 ? o_.max_tokens : m_.attrs.int_or("max_tokens", 512);
    if (plan_.n_ctx > 0) max_tokens = std::min(max_tokens, plan_.n_ctx);
    // Every activation must fit one descriptor (maxStorageBufferRange): fewer tokens per call
    // (VulkanModel chunks longer inputs) rather than a binding the device cannot take.
    if (o_.device.max_storage_range > 0) {
      uint64_t per_token = 0;
      for (const auto& op : fn_->ops)
        if (kind(op.get()) == Kind::Arena && has_tokens(op->type)) per_token = std::max(per_token, arena_size(op.get(), 1));
      const uint64_t limit = o_.device.max_storage_range - 256;
      if (per_token > 0 && uint64_t(max_tokens) * per_token > limit) {
        int64_t capped = std::max<int64_t>(int64_t(limit / per_token), 1);
        out_.notes.push_back(fmt::format("max_tokens {} -> {}: a {} byte-per-token activation must fit "
                                         "maxStorageBufferRange ({} bytes)",
                                         max_tokens, capped, per_token, o_.device.max_storage_range));
        max_tokens = capped;
      }
    }
    plan_.max_tokens = std::max<int64_t>(max_tokens, 1);
    // Liveness: index of the last op reading each arena value (through aliases); results live to the end.
    std::vector<const Op*> order;
    std::unordered_map<const Value*, size_t> last_use;
    for (const auto& op : fn_->ops) {
      order.push_back(op.get());
      for (const Value* v : op->operands) last_use[root(v)] = order.size() - 1;
      // The GEMM fallback of an integer-dot qmatmul reads the quantize's f32 input.
      if (op->op_name() == "qmatmul" && q8_.count(op->operand(0)))
        last_use[root(op->operand(0)->def->operand(0))] = order.size() - 1;
    }
    for (const Value* r : fn_->results) last_use[root(r)] = order.size();
    struct Block {
      uint64_t off, size;
      size_t last;
    };
    std::vector<Block> live;
    uint64_t top = 0;
    for (size_t i = 0; i < order.size(); ++i) {
      const Op* op = order[i];
      live.erase(std::remove_if(live.begin(), live.end(), [&](const Block& b) { return b.last < i; }), live.end());
      if (kind(op) != Kind::Arena) continue;
      uint64_t size = (arena_size(op, plan_.max_tokens) + 255) / 256 * 256;
      std::sort(live.begin(), live.end(), [](const Block& a, const Block& b) { return a.off < b.off; });
      uint64_t off = 0;
      for (const Block& b : live) {
        if (off + size <= b.off) break;
        off = std::max(off, b.off + b.size);
      }
      auto lu = last_use.find(op);
      live.push_back({off, size, lu == last_use.end() ? i : lu->second});
      offsets_[op] = off;
      top = std::max(top, off + size);
    }
    plan_.arena_bytes = std::max<uint64_t>(top, 256);
    out_.notes.push_back(
        fmt::format("buffers planned here: {} bytes for {} tokens per call", plan_.arena_bytes, plan_.max_tokens));
  }

  // ---- References.

  Binding ref(const Value* v) {
    auto it = refs_.find(v);
    if (it == refs_.end()) fail("vulkan codegen: value %{} has no buffer", v->name);
    return it->second;
  }

  // The value whose bytes a kernel reads for `v`: lazy dequants read their weight (packed).
  const Value* source(const Value* v) const {
    if (kind(v) == Kind::LazyDequant) return v->def->operand(0);
    return v;
  }

  uint32_t weight_index(const std::string& name) {
    auto it = weight_index_.find(name);
    if (it != weight_index_.end()) return it->second;
    const WeightDecl* w = m_.find_weight(name);
    if (!w) fail("vulkan codegen: unknown weight @{}", name);
    if (!w->data) fail("vulkan codegen: weight @{} has no data bound", name);
    if (!gpu_format_supported(w->type.dtype))
      fail("vulkan codegen: weight @{} has type {} which has no GPU decoder", name, dtype_name(w->type.dtype));
    const int64_t K = cols_of(w->type), rows = w->type.num_elements() / K;
    uint32_t idx = uint32_t(plan_.weights.size());
    plan_.weights.push_back({name, w->data, uint64_t(rows * row_bytes(w->type.dtype, K))});
    weight_index_[name] = idx;
    return idx;
  }

  // ---- Kernels and dispatches.

  uint32_t kernel(const KernelSource& ks) {
    std::string key = ks.name;
    for (uint32_t s : ks.spec) key += fmt::format(":{}", s);
    auto it = kernel_index_.find(key);
    if (it != kernel_index_.end()) return it->second;
    Kernel k;
    k.name = ks.name;
    k.spirv = compile_glsl(ks.glsl, ks.name, o_.glsl);
    k.spec = ks.spec;
    k.n_bindings = ks.n_bindings;
    k.features = spirv_features(k.spirv);
    k.shared_bytes = ks.shared_bytes;
    plan_.features |= k.features;
    uint32_t idx = uint32_t(plan_.kernels.size());
    plan_.kernels.push_back(std::move(k));
    kernel_index_[key] = idx;
    return idx;
  }

  static std::string label_of(const Op& op) {
    std::string s = op.op_name();
    if (!op.name.empty() && !std::isdigit(static_cast<unsigned char>(op.name[0]))) s += " %" + op.name;
    return s;
  }

  Dispatch& dispatch(const Op& op, uint32_t k, std::vector<Binding> b, std::vector<uint32_t> params, GroupCount gx,
                     GroupCount gy = {1, 0, 1}) {
    Dispatch d;
    d.kernel = k;
    d.bindings = std::move(b);
    d.params = std::move(params);
    d.groups[0] = gx;
    d.groups[1] = gy;
    d.label = label_of(op);
    for (const Value* v : op.operands) {
      Bytes by = bytes_of(source(v)->type);
      d.bytes_fixed += by.fixed;
      d.bytes_per_token += by.per_token;
    }
    Bytes by = bytes_of(TensorType{op.type.dtype == DType::I32 ? DType::I32 : DType::F32, op.type.dims});
    d.bytes_fixed += by.fixed;
    d.bytes_per_token += by.per_token;
    plan_.dispatches.push_back(std::move(d));
    return plan_.dispatches.back();
  }

  void lower(const Op& op) {
    const std::string& n = op.op_name();
    switch (kind(&op)) {
      case Kind::Weight:
        refs_[&op] = {BufKind::Weight, weight_index(*op.attrs.get_symbol("ref")), 0, 0};
        return;
      case Kind::State:
        refs_[&op] = {BufKind::State, state_index_.at(*op.attrs.get_symbol("ref")), 0, 0};
        return;
      case Kind::LazyDequant:
        return;
      case Kind::Alias: {
        if (n == "kv_write") {
          lower_kv_write(op);
          refs_[&op] = ref(op.operand(0));
          return;
        }
        Binding r = ref(source(op.operand(0)));
        if (n == "view") {
          const TensorType& in = op.operand(0)->type;
          int64_t per_row = in.static_elements() / (in.dims[0].is_static() ? in.dims[0].value : 1);
          r.offset += uint64_t(op.attrs.int_or("offset", 0) * row_bytes(in.dtype, per_row));
          r.bytes = 0;
        }
        refs_[&op] = r;
        return;
      }
      case Kind::Arg:
        return;
      case Kind::Arena:
        break;
    }
    Binding out{BufKind::Arena, 0, offsets_.at(&op), arena_size(&op, plan_.max_tokens)};
    refs_[&op] = out;
    if (n == "embedding") return lower_get_rows(op, source(op.operand(0)), op.operand(1), out);
    if (n == "dequant") return lower_get_rows(op, op.operand(0), nullptr, out);
    if (n == "qmatmul" || n == "matmul") return lower_matmul(op, out);
    if (n == "quantize") return lower_quantize(op, out);
    const uint32_t wg = o_.wg;
    if (n == "argmax") {
      const TensorType& x = op.operand(0)->type;
      RowCount xr = rows_of(x);
      dispatch(op, kernel(argmax_kernel(wg, f_)), {ref(op.operand(0)), out},
               {uint32_t(cols_of(x)), uint32_t(xr.per_token ? 0 : xr.fixed), uint32_t(xr.per_token ? xr.fixed : 0)},
               rows_groups(xr));
      return;
    }
    const int64_t C = cols_of(op.type);
    const RowCount rows = rows_of(op.type);
    const uint32_t rf = uint32_t(rows.per_token ? 0 : rows.fixed), rp = uint32_t(rows.per_token ? rows.fixed : 0);
    if (n == "add" || n == "mul" || n == "swiglu") {
      const TensorType& b = op.operand(1)->type;
      uint32_t period = has_tokens(b) ? 0xFFFFFFFFu : uint32_t(b.static_elements());
      if (n == "swiglu") period = 0xFFFFFFFFu;
      Eltwise e = n == "add" ? Eltwise::Add : n == "mul" ? Eltwise::Mul : Eltwise::Swiglu;
      dispatch(op, kernel(eltwise_kernel(e, wg, f_)), {ref(op.operand(0)), ref(op.operand(1)), out},
               {uint32_t(C), rf, rp, period}, fixed_groups(ceil_div(C, wg)), rows_groups(rows));
    } else if (n == "silu" || n == "gelu") {
      dispatch(op, kernel(eltwise_kernel(n == "silu" ? Eltwise::Silu : Eltwise::Gelu, wg, f_)),
               {ref(op.operand(0)), out}, {uint32_t(C), rf, rp, 0}, fixed_groups(ceil_div(C, wg)), rows_groups(rows));
    } else if (n == "rms_norm" || n == "layer_norm") {
      const bool layer = n == "layer_norm";
      std::vector<Binding> b;
      for (const Value* v : op.operands) b.push_back(ref(v));
      b.push_back(out);
      dispatch(op, kernel(norm_kernel(layer, op.num_operands() > 1, op.num_operands() > 2, wg, f_)), b,
               {uint32_t(C), rf, rp, fbits(float(*op.attrs.get_float("eps")))}, rows_groups(rows));
    } else if (n == "softmax") {
      const bool mask = op.num_operands() > 1;
      std::vector<Binding> b = {ref(op.operand(0))};
      uint32_t mask_rows = 1;
      if (mask) {
        b.push_back(ref(op.operand(1)));
        const TensorType& mt = op.operand(1)->type;
        if (has_tokens(mt)) fail("vulkan codegen: softmax masks must be static, got {}", mt.str());
        mask_rows = uint32_t(std::max<int64_t>(mt.static_elements() / C, 1));
      }
      b.push_back(out);
      dispatch(op, kernel(softmax_kernel(mask, wg, f_)), b,
               {uint32_t(C), rf, rp, mask_rows, fbits(float(op.attrs.float_or("scale", 1.0)))}, rows_groups(rows));
    } else if (n == "rope") {
      const TensorType& t = op.type;
      const int64_t n_dims = *op.attrs.get_int("n_dims");
      const float freq_base = float(*op.attrs.get_float("freq_base"));
      const float theta_scale = std::pow(freq_base, -2.0f / float(n_dims));
      const bool neox = op.attrs.get_string("mode") == "neox";
      GroupCount gy = t.dims[0].is_static() ? fixed_groups(t.dims[0].value) : GroupCount{0, 1, 1};
      dispatch(op, kernel(rope_kernel(wg, f_)), {ref(op.operand(0)), ref(op.operand(1)), out},
               {uint32_t(t.dims[1].value), uint32_t(t.dims[2].value), uint32_t(n_dims), neox ? 1u : 0u,
                fbits(theta_scale), fbits(float(op.attrs.float_or("freq_scale", 1.0)))},
               fixed_groups(t.dims[1].value), gy);
    } else if (n == "attention") {
      lower_attention(op, out);
    } else {
      fail("vulkan codegen: no Vulkan kernel for op '{}'", n);
    }
  }

  void lower_get_rows(const Op& op, const Value* table, const Value* ids, const Binding& out) {
    const TensorType& tt = table->type;
    if (tt.rank() != 2 && ids) fail("vulkan codegen: embedding table must be 2-D, got {}", tt.str());
    const DType fmt = tt.dtype;
    if (!gpu_format_supported(fmt)) fail("vulkan codegen: no GPU decoder for {}", dtype_name(fmt));
    const int64_t D = cols_of(tt), V = tt.num_elements() / D;
    const uint64_t rb = uint64_t(row_bytes(fmt, D));
    if (ids && ids->is_arg() && ids->arg_index == 0) vocab_from_embedding_ = V;
    const RowCount rows = ids ? RowCount{ids->type.static_elements(), has_tokens(ids->type)} : RowCount{V, false};
    std::vector<Binding> b = {ref(table)};
    if (ids) b.push_back(ref(ids));
    b.push_back(out);
    Dispatch& d = dispatch(op, kernel(get_rows_kernel(fmt, ids == nullptr, o_.wg, f_)), b,
                           {uint32_t(D), uint32_t(rb), 0, uint32_t(V), uint32_t(rows.per_token ? 0 : rows.fixed),
                            uint32_t(rows.per_token ? rows.fixed : 0)},
                           fixed_groups(ceil_div(ceil_div(D, 8), o_.wg)), rows_groups(rows));
    d.slice = {0, rb, V, 0, 0, 2, 3};
    if (ids) {  // only the selected rows are read
      d.bytes_fixed = 0;
      d.bytes_per_token = double(rb) + double(D) * 4 + 4;
    }
  }

  void lower_matmul(const Op& op, const Binding& out) {
    const std::string& n = op.op_name();
    if (n == "matmul" && !op.attrs.bool_or("transpose_b", false))
      fail("vulkan codegen: matmul without transpose_b (b as [K, N]) is not supported");
    const Value* a = op.operand(0);
    const Value* w = source(op.operand(1));
    const TensorType& wt = w->type;
    if (wt.rank() != 2) fail("vulkan codegen: matmul weight must be 2-D, got {}", wt.str());
    const DType fmt = wt.dtype;
    if (!gpu_format_supported(fmt)) fail("vulkan codegen: no GPU decoder for {}", dtype_name(fmt));
    const int64_t N = wt.dims[0].value, K = wt.dims[1].value;
    const uint64_t rb = uint64_t(row_bytes(fmt, K));
    const bool bias = n == "qmatmul" && op.attrs.bool_or("bias", false);
    const bool residual = n == "qmatmul" && op.attrs.bool_or("residual", false);
    RowCount rows = rows_of(a->type);
    std::vector<Binding> b = {ref(w), ref(a), out};
    int next = 2;
    if (bias) b.push_back(ref(op.operand(next++)));
    if (residual) b.push_back(ref(op.operand(next++)));
    if (o_.naive_matmul) {
      if (bias || residual) fail("vulkan codegen: the naive matmul kernel has no epilogue");
      Dispatch& d = dispatch(op, kernel(naive_matmul_kernel(fmt, f_)), b,
                             {uint32_t(N), uint32_t(K), uint32_t(rb), 0, uint32_t(N), 0, 0},
                             fixed_groups(ceil_div(N, 64)),
                             rows.per_token ? GroupCount{0, rows.fixed, 1} : fixed_groups(rows.fixed));
      d.label = fmt::format("naive {} {} {}x{}", n, dtype_name(fmt), N, K);
      return;
    }
    // The device's tiles, or the op's own (a tuning entry: checked against the device's limits).
    GemvTiles gv = t_.gemv;
    GemmTiles gm = t_.gemm;
    bool multi = t_.batch == VulkanCompileOptions::Batch::MultiTokenGemv;
    uint32_t multi_tokens = t_.batch_tokens;  // tokens per workgroup of the multi-token GEMV
    if (std::optional<VulkanTiles> own = n == "qmatmul" ? vulkan_tiles_of(op) : std::nullopt) {
      if (std::string why = tiles_fit(*own, o_.device); !why.empty())
        fail("vulkan codegen: {}: its tuned tiles do not fit {}: {} (re-tune with nibble tune --force, or compile "
             "with --no-tuning)",
             tuned_op_ref(op), o_.device.name, why);
      gv = {uint32_t(own->gemv_wg), uint32_t(own->gemv_rows), 1};
      gm = {uint32_t(own->gemm[0]), uint32_t(own->gemm[1]), uint32_t(own->gemm[2]), uint32_t(own->gemm[3]),
            uint32_t(own->gemm[4])};
      multi = own->batch == "gemv";
      multi_tokens = uint32_t(own->batch_tokens);
    }
    const GemvTiles gb{gv.wg, gv.rows, std::max<uint32_t>(multi_tokens, 1)};
    std::vector<uint32_t> params = {uint32_t(N), uint32_t(K), uint32_t(rb), 0, uint32_t(N),
                                    uint32_t(rows.per_token ? 0 : rows.fixed), uint32_t(rows.per_token ? rows.fixed : 0)};
    const bool q8 = q8_.count(a) != 0;
    uint32_t gemv;
    KernelSource batch_src;
    if (q8) {  // binding 1: the f32 input of the quantize (for a GEMM batch kernel), last: the q8 copy
      b[1] = ref(a->def->operand(0));
      b.push_back(ref(a));
      Q8Layout l = q8_layout(a->type.dtype, K, rows_max(a->type, plan_.max_tokens));
      params.insert(params.end(), {uint32_t(l.s_off), uint32_t(l.i_off), uint32_t(l.q_off)});
      gemv = kernel(gemv_q8_kernel(fmt, bias, residual, gv, f_));
      if (multi) {
        batch_src = gemv_q8_kernel(fmt, bias, residual, gb, f_);
      } else {
        batch_src = gemm_kernel(fmt, bias, residual, gm, f_);
        batch_src.name += ".q8slot";
        batch_src.n_bindings += 1;
      }
    } else {
      gemv = kernel(gemv_kernel(fmt, bias, residual, gv, f_));
      batch_src = multi ? gemv_kernel(fmt, bias, residual, gb, f_) : gemm_kernel(fmt, bias, residual, gm, f_);
    }
    const int64_t batch_rows = multi ? gv.rows : gm.bm, batch_tokens = multi ? gb.tokens : gm.bn;
    const int64_t gemv_rows = gv.rows;
    GroupCount gemv_y = rows_groups(rows, gv.tokens), batch_y = rows_groups(rows, batch_tokens);
    const bool use_batch = t_.gemm_from > 0 && (rows.per_token || rows.fixed >= t_.gemm_from);
    Dispatch* d;
    int64_t main_rows = gemv_rows;
    if (use_batch && !rows.per_token) {  // a static row count: the batch kernel alone
      d = &dispatch(op, kernel(batch_src), b, params, fixed_groups(ceil_div(N, batch_rows)), batch_y);
      main_rows = batch_rows;
    } else {
      d = &dispatch(op, gemv, b, params, fixed_groups(ceil_div(N, gemv_rows)), gemv_y);
      if (use_batch) {
        d->batch_kernel = kernel(batch_src);
        d->batch_from = t_.gemm_from;
        d->batch_groups[0] = fixed_groups(ceil_div(N, batch_rows));
        d->batch_groups[1] = batch_y;
      }
    }
    d->slice = {0, rb, N, main_rows, batch_rows, 3, 4};
    d->label = fmt::format("{} {}{} {}x{}", n, dtype_name(fmt), q8 ? " (q8 act)" : "", N, K);
  }

  void lower_quantize(const Op& op, const Binding& out) {
    const int64_t K = cols_of(op.type);
    const RowCount rows = rows_of(op.type);
    Q8Layout l = q8_layout(op.type.dtype, K, rows_max(op.type, plan_.max_tokens));
    dispatch(op, kernel(quantize_kernel(op.type.dtype, o_.wg, f_)), {ref(op.operand(0)), out},
             {uint32_t(K), uint32_t(rows.per_token ? 0 : rows.fixed), uint32_t(rows.per_token ? rows.fixed : 0),
              uint32_t(l.s_off), uint32_t(l.i_off), uint32_t(l.q_off)},
             fixed_groups(ceil_div(K / 32, o_.wg)), rows_groups(rows));
  }

  void lower_kv_write(const Op& op) {
    const TensorType& cache = op.operand(0)->type;
    const TensorType& x = op.operand(1)->type;
    const bool f16 = cache.dtype == DType::F16;
    const int64_t row = cache.dims[1].value * cache.dims[2].value;
    const bool pairs = f16 && !f_.storage16;
    if (pairs && row % 2) fail("vulkan codegen: an f16 KV cache with an odd row ({}) needs 16-bit storage", row);
    GroupCount gy = x.dims[0].is_static() ? fixed_groups(x.dims[0].value) : GroupCount{0, 1, 1};
    Dispatch& d = dispatch(op, kernel(kv_write_kernel(f16, o_.wg, f_)),
                           {ref(op.operand(1)), ref(op.operand(2)), ref(op.operand(0))},
                           {uint32_t(row), uint32_t(cache.dims[0].value)},
                           fixed_groups(ceil_div(pairs ? row / 2 : row, o_.wg)), gy);
    // Only the written rows move.
    d.bytes_fixed = 0;
    d.bytes_per_token = double(row) * 4 + double(row) * (f16 ? 2 : 4) + 4;
  }

  void lower_attention(const Op& op, const Binding& out) {
    const TensorType& q = op.type;
    const TensorType& k = op.operand(1)->type;
    const bool f16 = k.dtype == DType::F16;
    const uint32_t d = uint32_t(q.dims[2].value), n_ctx = uint32_t(k.dims[0].value);
    const uint32_t wg = o_.attention_wg;
    uint32_t chunk = o_.attention_chunk;
    if (chunk == 0) {
      int64_t budget = int64_t(o_.device.max_shared_bytes ? o_.device.max_shared_bytes : 16384) / 4 - d - 4 * wg - 16;
      chunk = uint32_t(std::max<int64_t>(64, std::min<int64_t>(budget, 8192) / 64 * 64));
    }
    GroupCount gy = q.dims[0].is_static() ? fixed_groups(q.dims[0].value) : GroupCount{0, 1, 1};
    Dispatch& ds = dispatch(op, kernel(attention_kernel(f16, d, n_ctx, chunk, wg, f_)),
                            {ref(op.operand(0)), ref(op.operand(1)), ref(op.operand(2)), ref(op.operand(3)), out},
                            {uint32_t(q.dims[1].value), uint32_t(k.dims[1].value), n_ctx,
                             fbits(float(*op.attrs.get_float("scale")))},
                            fixed_groups(q.dims[1].value), gy);
    (void)ds;
  }

  const Module& m_;
  const VulkanCompileOptions& o_;
  VulkanCompiled& out_;
  VulkanPlan& plan_;
  const Function* fn_ = nullptr;
  ShaderFeatures f_;
  VulkanCompileOptions t_;  // o_ with the device's tiles
  std::unordered_map<const Value*, Binding> refs_;
  std::unordered_map<const Value*, uint64_t> offsets_;
  std::unordered_set<const Value*> materialize_, q8_;
  std::map<std::string, uint32_t> kernel_index_, weight_index_, state_index_;
  int64_t vocab_from_embedding_ = 0;
};

}  // namespace

VulkanCompiled compile_for_vulkan(const Module& m, const VulkanCompileOptions& o) {
  VulkanCompiled out;
  Lowering(m, o, out).run();
  return out;
}

}  // namespace nibble::vk
