#include "ir/op_registry.h"

#include <deque>

namespace nibble {

static std::vector<OpDef>& registry() {
  static std::vector<OpDef> defs = [] {
    std::vector<OpDef> d;
    register_core_ops(d);
    register_elementwise_ops(d);
    register_attention_ops(d);
    register_shape_ops(d);
    return d;
  }();
  return defs;
}

const OpDef* find_op(std::string_view name) {
  for (const OpDef& d : registry())
    if (d.name == name) return &d;
  return nullptr;
}

const std::vector<const OpDef*>& all_ops() {
  static std::vector<const OpDef*> ptrs = [] {
    std::vector<const OpDef*> p;
    for (const OpDef& d : registry()) p.push_back(&d);
    return p;
  }();
  return ptrs;
}

const TensorType& operand_type(const InferContext& c, int i) { return c.op.operands[i]->type; }

void expect_dtype_float(const InferContext& c, int i) {
  op_check(operand_type(c, i).dtype == DType::F32, "operand #{} must be f32, got {}", i,
           operand_type(c, i).str());
}

bool same_dims(const std::vector<Dim>& a, const std::vector<Dim>& b) { return a == b; }

bool is_suffix(const std::vector<Dim>& suffix, const std::vector<Dim>& of) {
  if (suffix.size() > of.size()) return false;
  return std::equal(suffix.begin(), suffix.end(), of.end() - suffix.size());
}

std::string dims_str(const std::vector<Dim>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + dim_str(d[i]);
  return s + "]";
}

}  // namespace nibble
