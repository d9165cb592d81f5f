#include "ir/builder.h"

#include "ir/op_registry.h"
#include "support/error.h"

namespace nibble {

static const OpDef& lookup(std::string_view op) {
  const OpDef* d = find_op(op);
  if (!d) fail("builder: unknown op '{}'", op);
  return *d;
}

static void check_arity(const OpDef& d, size_t n) {
  if (int(n) < d.min_operands || (d.max_operands >= 0 && int(n) > d.max_operands))
    fail("builder: op '{}' takes {}..{} operands, got {}", d.name, d.min_operands,
         d.max_operands < 0 ? std::string("any") : std::to_string(d.max_operands), n);
}

Op* Builder::create(std::string_view op, std::vector<Value*> operands, Attrs attrs, std::string name) {
  const OpDef& d = lookup(op);
  check_arity(d, operands.size());
  auto o = std::make_unique<Op>(&d, std::move(operands), TensorType{}, std::move(attrs));
  try {
    o->type = d.infer(InferContext{&module_, *o, false});
  } catch (const OpError& e) {
    fail("builder: '{}': {}", d.name, e.what());
  }
  return insert(std::move(o), std::move(name));
}

Op* Builder::create_typed(std::string_view op, std::vector<Value*> operands, TensorType type, Attrs attrs,
                          std::string name) {
  const OpDef& d = lookup(op);
  check_arity(d, operands.size());
  auto o = std::make_unique<Op>(&d, std::move(operands), std::move(type), std::move(attrs));
  try {
    TensorType t = d.infer(InferContext{&module_, *o, true});
    if (t != o->type) fail("builder: '{}': declared type {} but the op gives {}", d.name, o->type.str(), t.str());
  } catch (const OpError& e) {
    fail("builder: '{}': {}", d.name, e.what());
  }
  return insert(std::move(o), std::move(name));
}

Op* Builder::insert(std::unique_ptr<Op> op, std::string name) {
  op->name = std::move(name);
  return func_.insert(pos_, std::move(op));
}

WeightDecl& Builder::declare_weight(const std::string& name, TensorType type, Attrs attrs) {
  if (module_.find_weight(name)) fail("builder: weight @{} declared twice", name);
  module_.weights.push_back({name, std::move(type), std::move(attrs), nullptr});
  return module_.weights.back();
}

StateDecl& Builder::declare_state(const std::string& name, TensorType type, Attrs attrs) {
  if (module_.find_state(name)) fail("builder: state @{} declared twice", name);
  module_.states.push_back({name, std::move(type), std::move(attrs)});
  return module_.states.back();
}

Op* Builder::weight(const std::string& name) {
  Attrs a;
  a.set("ref", SymbolRef{name});
  return create("weight", {}, std::move(a));
}

Op* Builder::state(const std::string& name) {
  Attrs a;
  a.set("ref", SymbolRef{name});
  return create("state", {}, std::move(a));
}

Op* Builder::matmul(Value* a, Value* b, bool transpose_b) {
  Attrs attrs;
  if (transpose_b) attrs.set("transpose_b", true);
  return create("matmul", {a, b}, std::move(attrs));
}

Op* Builder::rms_norm(Value* x, double eps) {
  Attrs a;
  a.set("eps", eps);
  return create("rms_norm", {x}, std::move(a));
}

Op* Builder::reshape(Value* x, std::vector<Dim> dims) {
  return create_typed("reshape", {x}, TensorType{x->type.dtype, std::move(dims)});
}

}  // namespace nibble
