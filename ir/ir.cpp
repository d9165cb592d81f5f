#include "ir/ir.h"

#include "ir/op_registry.h"

namespace nibble {

Op::Op(const OpDef* d, std::vector<Value*> ops, TensorType result, Attrs a)
    : operands(std::move(ops)), attrs(std::move(a)), op_def_(d) {
  type = std::move(result);
  def = this;
}

const std::string& Op::op_name() const { return op_def_->name; }
bool Op::has_side_effects() const { return op_def_->side_effects; }

Value* Function::add_arg(const std::string& arg_name, TensorType t) {
  auto v = std::make_unique<Value>();
  v->name = arg_name;
  v->type = std::move(t);
  v->arg_index = int(args.size());
  args.push_back(std::move(v));
  return args.back().get();
}

Op* Function::append(std::unique_ptr<Op> op) {
  ops.push_back(std::move(op));
  return ops.back().get();
}

Op* Function::insert(std::list<std::unique_ptr<Op>>::iterator pos, std::unique_ptr<Op> op) {
  return ops.insert(pos, std::move(op))->get();
}

void Function::replace_all_uses(Value* from, Value* to) {
  for (auto& op : ops)
    for (Value*& v : op->operands)
      if (v == from) v = to;
  for (Value*& v : results)
    if (v == from) v = to;
}

size_t Function::use_count(const Value* v) const {
  size_t n = 0;
  for (const auto& op : ops)
    for (const Value* u : op->operands) n += (u == v);
  for (const Value* u : results) n += (u == v);
  return n;
}

template <typename T>
static T* find_named(std::vector<T>& xs, const std::string& n) {
  for (T& x : xs)
    if (x.name == n) return &x;
  return nullptr;
}

WeightDecl* Module::find_weight(const std::string& n) { return find_named(weights, n); }
const WeightDecl* Module::find_weight(const std::string& n) const {
  return find_named(const_cast<std::vector<WeightDecl>&>(weights), n);
}
StateDecl* Module::find_state(const std::string& n) { return find_named(states, n); }
const StateDecl* Module::find_state(const std::string& n) const {
  return find_named(const_cast<std::vector<StateDecl>&>(states), n);
}

Function* Module::find_function(const std::string& n) {
  for (auto& f : functions)
    if (f->name == n) return f.get();
  return nullptr;
}

Function* Module::add_function(const std::string& n) {
  functions.push_back(std::make_unique<Function>());
  functions.back()->name = n;
  return functions.back().get();
}

}  // namespace nibble
