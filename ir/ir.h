// The graph IR: a Module holds weight and state declarations (by reference: name, type, where the
// bytes are) and functions; a Function is a straight-line list of Ops in SSA form.
// Every Op has exactly one result; an Op *is* the Value it defines.
#pragma once
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "ir/attributes.h"
#include "ir/types.h"

namespace nibble {

class Op;
struct OpDef;

struct Location {
  int line = 0, col = 0;  // 0 when built in memory
};

// A value: a function argument or an op result.
class Value {
 public:
  TensorType type;
  std::string name;  // printed name without '%'; numeric names are renumbered on print
  Op* def = nullptr;     // defining op, null for function arguments
  int arg_index = -1;    // index in the function's arguments, -1 for op results
  bool is_arg() const { return def == nullptr; }
};

class Op : public Value {
 public:
  Op(const OpDef* d, std::vector<Value*> operands, TensorType result, Attrs attrs = {});
  const OpDef& op_def() const { return *op_def_; }
  const std::string& op_name() const;
  std::vector<Value*> operands;
  Attrs attrs;
  Location loc;
  Value* operand(int i) const { return operands[i]; }
  int num_operands() const { return int(operands.size()); }
  bool has_side_effects() const;

 private:
  const OpDef* op_def_;
};

// A weight: a named constant tensor whose bytes live elsewhere (a GGUF file, a plan).
// attrs: file = "path", offset = N (absolute in file); layout = "..." once chosen.
struct WeightDecl {
  std::string name;
  TensorType type;
  Attrs attrs;
  const void* data = nullptr;  // bound by a loader; not printed
  Location loc;                // of the declaration in IR text; 0 when built in memory
};

// A state buffer: persistent across calls (the KV cache), zero-initialized.
struct StateDecl {
  std::string name;
  TensorType type;
  Attrs attrs;
  Location loc;
};

class Function {
 public:
  std::string name;
  std::vector<std::unique_ptr<Value>> args;
  std::list<std::unique_ptr<Op>> ops;  // in execution order
  std::vector<Value*> results;         // `return` operands
  Location loc;

  Value* add_arg(const std::string& arg_name, TensorType t);
  Op* append(std::unique_ptr<Op> op);
  // Inserts before `pos` (an iterator into ops).
  Op* insert(std::list<std::unique_ptr<Op>>::iterator pos, std::unique_ptr<Op> op);
  // Replaces every use of `from` (operands and results) with `to`.
  void replace_all_uses(Value* from, Value* to);
  // Counts uses of each value (operands and results).
  size_t use_count(const Value* v) const;
};

class Module {
 public:
  std::string name;
  Attrs attrs;  // model-level facts (architecture, hyperparameters)
  std::vector<WeightDecl> weights;
  std::vector<StateDecl> states;
  std::vector<std::unique_ptr<Function>> functions;

  WeightDecl* find_weight(const std::string& n);
  const WeightDecl* find_weight(const std::string& n) const;
  StateDecl* find_state(const std::string& n);
  const StateDecl* find_state(const std::string& n) const;
  Function* find_function(const std::string& n);
  Function* add_function(const std::string& n);
  // Keeps the mapped files that bound weights point into alive as long as the module.
  std::vector<std::shared_ptr<const void>> keep_alive;
};

}  // namespace nibble
