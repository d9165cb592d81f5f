#include "codegen/plan/cpu_lowering.h"

#include <map>
#include <unordered_map>

#include <fmt/format.h>

#include "ir/row_shape.h"
#include "support/error.h"

namespace nibble::cpu {

namespace {

RowCount rows_of(const TensorType& t) { return nibble::rows_of(t, "cpu codegen"); }
int64_t cols_of(const TensorType& t) { return nibble::cols_of(t, "cpu codegen"); }

class Lowering {
 public:
  Lowering(const Module& m, CpuJit& jit, CompiledCpuModel& out) : m_(m), jit_(jit), out_(out), plan_(out.plan) {}

  void run() {
    const Function* f = const_cast<Module&>(m_).find_function("forward");
    if (!f) fail("cpu codegen: module @{} has no @forward function", m_.name);
    if (f->args.size() != 2) fail("cpu codegen: @forward must take (%tokens, %pos)");
    refs_[f->args[0].get()] = {rt::BufKind::Tokens, 0, 0};
    refs_[f->args[1].get()] = {rt::BufKind::Pos, 0, 0};
    plan_.n_vocab = m_.attrs.int_or("n_vocab", 0);
    plan_.n_ctx = m_.attrs.int_or("n_ctx", 0);
    plan_.max_tokens = m_.attrs.int_or("max_tokens", 0);
    plan_.arena_bytes = uint64_t(m_.attrs.int_or("arena_bytes", -1));
    if (plan_.max_tokens <= 0 || !m_.attrs.has("arena_bytes"))
      fail("cpu codegen: buffers are not planned (run the cpu pipeline: plan-buffers)");
    for (const StateDecl& s : m_.states) {
      state_index_[s.name] = uint32_t(plan_.states.size());
      plan_.states.push_back({s.name, uint64_t(row_bytes(s.type.dtype, s.type.num_elements()))});
    }
    for (const auto& op : f->ops) lower(*op);
    if (f->results.size() != 1) fail("cpu codegen: @forward must return the logits only");
    plan_.logits = ref(f->results[0]);
  }

 private:
  rt::BufRef ref(const Value* v) {
    auto it = refs_.find(v);
    if (it == refs_.end()) fail("cpu codegen: value %{} has no buffer", v->name);
    return it->second;
  }

  uint32_t weight_index(const std::string& name) {
    auto it = weight_index_.find(name);
    if (it != weight_index_.end()) return it->second;
    const WeightDecl* w = m_.find_weight(name);
    if (!w->data) fail("cpu codegen: weight @{} has no data bound", name);
    const int64_t K = cols_of(w->type), rows = w->type.num_elements() / K;
    rt::WeightBlob blob{name, w->data, uint64_t(rows * row_bytes(w->type.dtype, K))};
    std::string layout = w->attrs.string_or("layout", "rows");
    if (layout != "rows") {
      if (w->type.rank() != 2) fail("cpu codegen: layout '{}' needs a 2-D weight, @{} is {}", layout, name, w->type.str());
      out_.repacked.push_back(repack_weight(w->type.dtype, layout, w->data, rows, K));
      blob.data = out_.repacked.back().data();
      blob.bytes = out_.repacked.back().size();
    }
    uint32_t idx = uint32_t(plan_.weights.size());
    plan_.weights.push_back(blob);
    weight_index_[name] = idx;
    return idx;
  }

  rt::BufRef arena_of(const Op& op) {
    auto off = op.attrs.get_int("arena_offset");
    if (!off) fail("cpu codegen: '{}' result %{} has no arena_offset (run plan-buffers)", op.op_name(), op.name);
    return {rt::BufKind::Arena, 0, uint64_t(*off)};
  }

  // Adds a step over rows of `t`; returns it for the caller to fill.
  rt::Step& step(const Op& op, std::string kernel, const TensorType& rows_type) {
    rt::Step s;
    s.kernel = std::move(kernel);
    RowCount r = rows_of(rows_type);
    (r.per_token ? s.tasks_per_token : s.tasks) = r.fixed;
    s.label = op.op_name() + (op.name.empty() || std::isdigit(static_cast<unsigned char>(op.name[0])) ? "" : " %" + op.name);
    plan_.steps.push_back(std::move(s));
    return plan_.steps.back();
  }

  std::vector<rt::BufRef> operands(const Op& op) {
    std::vector<rt::BufRef> b;
    for (const Value* v : op.operands) b.push_back(ref(v));
    return b;
  }

  void lower(const Op& op) {
    const std::string& n = op.op_name();
    const TensorType& t = op.type;
    if (n == "weight") {
      refs_[&op] = {rt::BufKind::Weight, weight_index(*op.attrs.get_symbol("ref")), 0};
      return;
    }
    if (n == "state") {
      refs_[&op] = {rt::BufKind::State, state_index_.at(*op.attrs.get_symbol("ref")), 0};
      return;
    }
    if (n == "reshape") {
      refs_[&op] = ref(op.operand(0));
      return;
    }
    if (n == "view" && op.attrs.int_or("axis", -1) == 0) {  // a slice of whole rows: an alias
      rt::BufRef r = ref(op.operand(0));
      const TensorType& in = op.operand(0)->type;
      int64_t row = row_bytes(in.dtype, in.static_elements() / (in.dims[0].is_static() ? in.dims[0].value : 1));
      r.offset += uint64_t(op.attrs.int_or("offset", 0) * row);
      refs_[&op] = r;
      return;
    }
    if (n == "kv_write") {
      const TensorType& cache = op.operand(0)->type;
      rt::Step& s = step(op, cache.dtype == DType::F16 ? "kv_write_f16" : "kv_write_f32", op.operand(1)->type);
      // Tasks are tokens: rows_of counts heads too, so count the token dim alone.
      s.tasks = 0;
      s.tasks_per_token = 1;
      s.bufs = {ref(op.operand(1)), ref(op.operand(2)), ref(op.operand(0))};
      s.ints = {cache.dims[1].value * cache.dims[2].value, cache.dims[0].value};
      refs_[&op] = ref(op.operand(0));
      return;
    }

    refs_[&op] = arena_of(op);
    const int64_t C = cols_of(op.operand(0)->type);
    if (n == "embedding") {
      const TensorType& table = op.operand(0)->type;
      rt::Step& s = step(op, jit_.request_get_rows(table.dtype), t);
      s.bufs = {ref(op.operand(0)), ref(op.operand(1)), ref(&op)};
      s.ints = {table.dims[1].value};
    } else if (n == "quantize") {
      rt::Step& s = step(op, jit_.request_quantize(t.dtype), t);
      s.bufs = {ref(op.operand(0)), ref(&op)};
      s.ints = {C};
    } else if (n == "qmatmul") {
      lower_qmatmul(op);
    } else if (n == "add" || n == "mul") {
      rt::Step& s = step(op, n + "_f32", t);
      // b has a's shape (b_rows 0), or is a static suffix of it: its rows repeat (b_rows = its row
      // count, 1 for one row). static_elements() skips n_tokens, so a [n_tokens, C] b is not one row.
      const TensorType& bt = op.operand(1)->type;
      const bool same_shape = bt.dims == t.dims;
      if (!same_shape && bt.rank() == 0)
        fail("cpu codegen: '{}' of a scalar operand has no CPU kernel (give it shape [{}])", n, cols_of(t));
      if (!same_shape && !bt.is_static())
        fail("cpu codegen: '{}' broadcasts {} to {}: a broadcast operand must be static", n, bt.str(), t.str());
      s.bufs = {ref(op.operand(0)), ref(op.operand(1)), ref(&op)};
      s.ints = {cols_of(t), same_shape ? 0 : bt.static_elements() / cols_of(t)};
    } else if (n == "swiglu") {
      rt::Step& s = step(op, "swiglu_f32", t);
      s.bufs = {ref(op.operand(0)), ref(op.operand(1)), ref(&op)};
      s.ints = {C};
    } else if (n == "silu" || n == "gelu") {
      rt::Step& s = step(op, n + "_f32", t);
      s.bufs = {ref(op.operand(0)), ref(&op)};
      s.ints = {C};
    } else if (n == "rms_norm" || n == "layer_norm") {
      rt::Step& s = step(op, n + "_f32", t);
      s.bufs = operands(op);
      while (s.bufs.size() < (n == "rms_norm" ? 2u : 3u)) s.bufs.push_back({rt::BufKind::Null, 0, 0});
      s.bufs.push_back(ref(&op));
      s.ints = {C};
      s.floats = {float(*op.attrs.get_float("eps"))};
    } else if (n == "softmax") {
      rt::Step& s = step(op, "softmax_f32", t);
      s.bufs = {ref(op.operand(0)),
                op.num_operands() > 1 ? ref(op.operand(1)) : rt::BufRef{rt::BufKind::Null, 0, 0}, ref(&op)};
      s.ints = {C, op.num_operands() > 1 ? op.operand(1)->type.static_elements() / C : 0};
      s.floats = {float(op.attrs.float_or("scale", 1.0))};
    } else if (n == "rope") {
      rt::Step& s = step(op, "rope_f32", t);
      s.tasks = 0;
      s.tasks_per_token = 1;
      s.bufs = {ref(op.operand(0)), ref(op.operand(1)), ref(&op)};
      s.ints = {t.dims[1].value, t.dims[2].value, *op.attrs.get_int("n_dims"),
                op.attrs.get_string("mode") == "neox" ? 1 : 0};
      s.floats = {float(*op.attrs.get_float("freq_base")), float(op.attrs.float_or("freq_scale", 1.0))};
    } else if (n == "attention") {
      const TensorType& k = op.operand(1)->type;
      rt::Step& s = step(op, k.dtype == DType::F16 ? "attention_f16" : "attention_f32", t);
      s.tasks = 0;
      s.tasks_per_token = t.dims[1].value;
      s.bufs = {ref(op.operand(0)), ref(op.operand(1)), ref(op.operand(2)), ref(op.operand(3)), ref(&op)};
      s.ints = {t.dims[1].value, k.dims[1].value, k.dims[2].value, k.dims[0].value};
      s.floats = {float(*op.attrs.get_float("scale"))};
      // Scores for every cache row, plus the (rounded) query and an accumulator row.
      plan_.scratch_bytes = std::max<uint64_t>(plan_.scratch_bytes, uint64_t(k.dims[0].value + 4 * k.dims[2].value + 64) * 4);
    } else if (n == "argmax") {
      rt::Step& s = step(op, "argmax_f32", op.operand(0)->type);
      s.bufs = {ref(op.operand(0)), ref(&op)};
      s.ints = {C};
    } else {
      fail("cpu codegen: no CPU kernel for op '{}'", n);
    }
  }

  void lower_qmatmul(const Op& op) {
    const TensorType& a = op.operand(0)->type;
    const TensorType& w = op.operand(1)->type;
    QMatmulKernel k;
    k.weight = w.dtype;
    k.act = a.dtype;
    const WeightDecl* decl = op.operand(1)->def && op.operand(1)->def->op_name() == "weight"
                                 ? m_.find_weight(*op.operand(1)->def->attrs.get_symbol("ref"))
                                 : nullptr;
    if (!decl) fail("cpu codegen: qmatmul needs a weight as its second operand");
    k.layout = decl->attrs.string_or("layout", "rows");
    k.sched.rows_per_task = int(op.attrs.int_or("rows_per_task", 16));
    k.sched.k_unroll = int(op.attrs.int_or("k_unroll", 1));
    k.sched.vector_bits = int(op.attrs.int_or("vector_bits", 256));
    k.sched.m_tile = int(op.attrs.int_or("m_tile", 4));
    k.sched.gemm = op.attrs.string_or("path", "gemv") == "gemm";
    k.bias = op.attrs.bool_or("bias", false);
    k.residual = op.attrs.bool_or("residual", false);
    const int64_t N = w.dims[0].value, K = w.dims[1].value;
    RowCount rows = rows_of(a);
    if (rows.per_token && rows.fixed != 1) fail("cpu codegen: qmatmul activations must be [n_tokens, K] or static");

    rt::Step s;
    s.kernel = jit_.request_qmatmul(k);
    plan_.scratch_bytes = std::max(plan_.scratch_bytes, qmatmul_scratch_bytes(k, K));
    if (int64_t from = op.attrs.int_or("gemm_from", 0); from > 0 && !k.sched.gemm && rows.per_token) {
      QMatmulKernel g = k;
      g.sched.gemm = true;
      s.batch_kernel = jit_.request_qmatmul(g);
      plan_.scratch_bytes = std::max(plan_.scratch_bytes, qmatmul_scratch_bytes(g, K));
      s.batch_from_tokens = from;
    }
    s.bufs = operands(op);
    s.bufs.insert(s.bufs.begin() + 2, ref(&op));  // w, a order below
    std::swap(s.bufs[0], s.bufs[1]);              // the kernel takes (w, a, out, [bias], [residual])
    s.ints = {N, K, rows.per_token ? 0 : rows.fixed};
    s.tasks = (N + k.sched.rows_per_task - 1) / k.sched.rows_per_task;
    s.label = fmt::format("qmatmul {} {}x{}", dtype_name(w.dtype), N, K);
    plan_.steps.push_back(std::move(s));
  }

  const Module& m_;
  CpuJit& jit_;
  CompiledCpuModel& out_;
  rt::CpuPlan& plan_;
  std::unordered_map<const Value*, rt::BufRef> refs_;
  std::map<std::string, uint32_t> weight_index_, state_index_;
};

}  // namespace

std::unique_ptr<CompiledCpuModel> lower_to_cpu_plan(const Module& m, CpuJit& jit) {
  auto out = std::make_unique<CompiledCpuModel>();
  out->repacked.reserve(m.weights.size());  // blobs point into it: no reallocation
  Lowering(m, jit, *out).run();
  return out;
}

}  // namespace nibble::cpu
