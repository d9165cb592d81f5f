// The op set. Each op is defined once: its name, a one-line summary, operand arity, whether it has
// side effects, and its type rule (which verifies operands and attributes and infers the result).
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "ir/ir.h"

namespace nibble {

// Thrown by a type rule; the verifier adds the op's name and location.
class OpError : public std::runtime_error {
 public:
  explicit OpError(const std::string& m) : std::runtime_error(m) {}
};

template <typename... Args>
void op_check(bool cond, fmt::format_string<Args...> f, Args&&... args) {
  if (!cond) throw OpError(fmt::format(f, std::forward<Args>(args)...));
}

struct InferContext {
  const Module* module;  // for ops that reference module symbols; may be null in unit tests
  const Op& op;          // operands and attrs; op.type is the declared type (used by reshape)
  bool has_declared_type;
};

using InferFn = TensorType (*)(const InferContext&);

struct OpDef {
  std::string name;
  std::string summary;
  int min_operands;
  int max_operands;   // -1: unbounded
  bool side_effects;  // never removed or merged by DCE/CSE
  bool elementwise;   // result[i] depends on operands[..][i] only (with trailing broadcast)
  InferFn infer;
  bool declared_type = false;  // the result type is given in the IR, not inferred (reshape, quantize)
};

const OpDef* find_op(std::string_view name);
const std::vector<const OpDef*>& all_ops();

// Registration hooks, one per op family (ops_*.cpp).
void register_core_ops(std::vector<OpDef>& defs);
void register_elementwise_ops(std::vector<OpDef>& defs);
void register_attention_ops(std::vector<OpDef>& defs);
void register_shape_ops(std::vector<OpDef>& defs);

// Helpers shared by type rules.
const TensorType& operand_type(const InferContext& c, int i);
void expect_dtype_float(const InferContext& c, int i);  // f32 activations
bool same_dims(const std::vector<Dim>& a, const std::vector<Dim>& b);
bool is_suffix(const std::vector<Dim>& suffix, const std::vector<Dim>& of);
std::string dims_str(const std::vector<Dim>& d);

}  // namespace nibble
