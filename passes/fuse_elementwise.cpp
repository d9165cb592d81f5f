// fuse-elementwise: folds element-wise epilogues into the op that produces their input, so the
// intermediate tensor is never written.
//
// Rules (P is the producer; each applies only when P has no other use, counting `return`):
//   mul(P = rms_norm(x), s)      -> rms_norm(x, s)     s: f32[D], P had no scale
//   mul(P = layer_norm(x), s)    -> layer_norm(x, s)   same
//   add(P = layer_norm(x, s), c) -> layer_norm(x, s, c) c: f32[D], P had a scale and no bias
//   add(P = qmatmul(..), c)      -> qmatmul(.., c) {bias = true}       c: f32[N], P had no bias or residual
//   add(r, P = qmatmul(..)) or add(P = qmatmul(..), r)
//                                -> qmatmul(.., r) {residual = true}   r: the result's type, P had no residual
// The numerics are unchanged: the fused kernels apply the same f32 operations in the same order.
// Ordering: the fused op takes the place of the mul/add, i.e. the producer moves down to its only
// user. Everything it reads (x, s, c, r and P's operands) is defined before that user, so the
// residual may be defined after the original qmatmul. A side-effecting op (kv_write) between the
// producer and its user blocks the move: the producer could read the state it writes. Chains fuse
// in one walk: the bias add and then the residual add see the already fused qmatmul.
#include "ir/builder.h"
#include "passes/pass.h"

namespace nibble {

namespace {

bool is_op(const Value* v, const char* name) { return v && v->def && v->def->op_name() == name; }

bool is_vector_of(const Value* v, const Dim& n) {
  return v->type.dtype == DType::F32 && v->type.rank() == 1 && v->type.dims[0] == n;
}

class FuseElementwise : public Pass {
 public:
  void run(Module& m, const PassOptions&) override {
    for (auto& f : m.functions) {
      Builder b(m, *f);
      for (auto it = f->ops.begin(); it != f->ops.end();) {
        Op* op = it->get();
        Op* producer = nullptr;
        Op* fused = nullptr;
        b.set_insertion_point(it);
        if (op->op_name() == "mul" || op->op_name() == "add") {
          fused = fuse(b, *f, *op, producer);
        }
        if (!fused) {
          ++it;
          continue;
        }
        fused->loc = op->loc;
        f->replace_all_uses(op, fused);
        it = f->ops.erase(it);
        erase(*f, producer);
      }
    }
  }

 private:
  // The producer may move down to `user`: its only use, and no side effect in between.
  bool movable(const Function& f, const Op* p, const Op* user) {
    if (f.use_count(p) != 1) return false;
    bool between = false;
    for (const auto& op : f.ops) {
      if (op.get() == user) return true;
      if (between && op->has_side_effects()) return false;
      between |= op.get() == p;
    }
    return false;
  }

  // The fused op (inserted before `op`), or null; `producer` is the op it absorbs.
  Op* fuse(Builder& b, const Function& f, Op& op, Op*& producer) {
    Value* lhs = op.operand(0);
    Value* rhs = op.operand(1);
    bool is_mul = op.op_name() == "mul";
    // Norm scale: mul(norm(x), s).
    if (is_mul && (is_op(lhs, "rms_norm") || is_op(lhs, "layer_norm"))) {
      Op* n = lhs->def;
      if (n->num_operands() == 1 && movable(f, n, &op) && is_vector_of(rhs, n->type.dim(-1))) {
        producer = n;
        return b.create(n->op_name(), {n->operand(0), rhs}, n->attrs, op.name);
      }
      return nullptr;
    }
    if (is_mul) return nullptr;
    // Layer-norm bias: add(layer_norm(x, s), c).
    if (is_op(lhs, "layer_norm")) {
      Op* n = lhs->def;
      if (n->num_operands() == 2 && movable(f, n, &op) && is_vector_of(rhs, n->type.dim(-1))) {
        producer = n;
        return b.create("layer_norm", {n->operand(0), n->operand(1), rhs}, n->attrs, op.name);
      }
    }
    // Residual: either side may be the qmatmul; the right one first (the residual stream is
    // usually on the left: x + f(x)).
    for (int side : {1, 0}) {
      Value* q = op.operand(side);
      Value* r = op.operand(1 - side);
      if (!is_op(q, "qmatmul") || q->def->attrs.bool_or("residual", false) || !movable(f, q->def, &op)) continue;
      if (r->type != q->type) continue;
      producer = q->def;
      std::vector<Value*> operands = producer->operands;
      operands.push_back(r);
      Attrs attrs = producer->attrs;
      attrs.set("residual", true);
      return b.create("qmatmul", operands, attrs, op.name);
    }
    // Bias: add(qmatmul(..), c[N]).
    if (is_op(lhs, "qmatmul")) {
      Op* q = lhs->def;
      if (!q->attrs.bool_or("bias", false) && !q->attrs.bool_or("residual", false) && movable(f, q, &op) &&
          is_vector_of(rhs, q->type.dim(-1))) {
        producer = q;
        std::vector<Value*> operands = {q->operand(0), q->operand(1), rhs};
        Attrs attrs = q->attrs;
        attrs.set("bias", true);
        return b.create("qmatmul", operands, attrs, op.name);
      }
    }
    return nullptr;
  }

  void erase(Function& f, const Op* op) {
    for (auto it = f.ops.begin(); it != f.ops.end(); ++it)
      if (it->get() == op) {
        f.ops.erase(it);
        return;
      }
  }
};

}  // namespace

extern const PassInfo kFuseElementwisePass = {
    "fuse-elementwise", "folds norm scales, matmul biases and residual adds into their producers",
    [] { return std::make_unique<FuseElementwise>(); }};

}  // namespace nibble
