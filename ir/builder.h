// Builder: creates ops with their result types inferred by the op's type rule.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "ir/ir.h"

namespace nibble {

class Builder {
 public:
  Builder(Module& m, Function& f) : module_(m), func_(f), pos_(f.ops.end()) {}

  Module& module() { return module_; }
  Function& function() { return func_; }
  // New ops go before `pos` (default: the end of the function).
  void set_insertion_point(std::list<std::unique_ptr<Op>>::iterator pos) { pos_ = pos; }

  // Creates an op, infers its type (throws nibble::Error when the type rule rejects it).
  Op* create(std::string_view op, std::vector<Value*> operands, Attrs attrs = {}, std::string name = {});
  // For ops whose result type is given, not inferred (reshape).
  Op* create_typed(std::string_view op, std::vector<Value*> operands, TensorType type, Attrs attrs = {},
                   std::string name = {});

  // Declarations.
  WeightDecl& declare_weight(const std::string& name, TensorType type, Attrs attrs = {});
  StateDecl& declare_state(const std::string& name, TensorType type, Attrs attrs = {});

  // Shorthands for the common ops.
  Op* weight(const std::string& name);
  Op* state(const std::string& name);
  Op* add(Value* a, Value* b) { return create("add", {a, b}); }
  Op* mul(Value* a, Value* b) { return create("mul", {a, b}); }
  Op* matmul(Value* a, Value* b, bool transpose_b);
  Op* dequant(Value* w) { return create("dequant", {w}); }
  Op* rms_norm(Value* x, double eps);
  Op* reshape(Value* x, std::vector<Dim> dims);

 private:
  Op* insert(std::unique_ptr<Op> op, std::string name);
  Module& module_;
  Function& func_;
  std::list<std::unique_ptr<Op>>::iterator pos_;
};

}  // namespace nibble
