// canonicalize: re-infers every result type from its operands (shape inference) and folds
// trivial shape ops: identity reshape/permute, reshape of reshape, permute of permute.
#include "ir/op_registry.h"
#include "passes/pass.h"
#include "support/error.h"

namespace nibble {

namespace {

bool is(const Value* v, const char* name) { return v->def && v->def->op_name() == name; }

// Returns the value `op` folds to, or null when it stays.
Value* fold(Op& op) {
  const std::string& n = op.op_name();
  if (n == "reshape") {
    if (op.type == op.operand(0)->type) return op.operand(0);
    if (is(op.operand(0), "reshape")) op.operands[0] = op.operand(0)->def->operand(0);
    if (op.type == op.operand(0)->type) return op.operand(0);
  } else if (n == "permute") {
    auto perm = *op.attrs.get_ints("perm");
    if (is(op.operand(0), "permute")) {
      Op* inner = op.operand(0)->def;
      auto inner_perm = *inner->attrs.get_ints("perm");
      std::vector<int64_t> composed(perm.size());
      for (size_t i = 0; i < perm.size(); ++i) composed[i] = inner_perm[perm[i]];
      op.operands[0] = inner->operand(0);
      op.attrs.set("perm", composed);
      perm = composed;
    }
    bool identity = true;
    for (size_t i = 0; i < perm.size(); ++i) identity &= perm[i] == int64_t(i);
    if (identity) return op.operand(0);
  }
  return nullptr;
}

class Canonicalize : public Pass {
 public:
  void run(Module& m, const PassOptions&) override {
    for (auto& f : m.functions) {
      for (auto it = f->ops.begin(); it != f->ops.end();) {
        Op& op = **it;
        try {
          // Shape inference: ops whose type is declared (reshape, quantize) keep it.
          TensorType t = op.op_def().infer(InferContext{&m, op, true});
          if (!op.op_def().declared_type) op.type = t;
        } catch (const OpError& e) {
          fail("canonicalize: '{}' at {}:{}: {}", op.op_name(), op.loc.line, op.loc.col, e.what());
        }
        if (Value* to = fold(op)) {
          f->replace_all_uses(&op, to);
          it = f->ops.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
};

}  // namespace

extern const PassInfo kCanonicalizePass = {
    "canonicalize", "shape inference and folding of trivial reshapes and permutes",
    [] { return std::make_unique<Canonicalize>(); }};

}  // namespace nibble
