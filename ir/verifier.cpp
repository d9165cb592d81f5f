#include "ir/verifier.h"

#include <set>
#include <unordered_set>

#include <fmt/format.h>

#include "ir/op_registry.h"
#include "support/error.h"

namespace nibble {

namespace {

std::string where(const Function& f, const Location& loc) {
  if (loc.line > 0) return fmt::format("{}:{}", loc.line, loc.col);
  return "@" + f.name;
}

// "line:col: " of a declaration read from text, nothing for one built in memory.
std::string at_decl(const Location& loc) { return loc.line > 0 ? fmt::format("{}:{}: ", loc.line, loc.col) : ""; }

void verify_decl_type(const std::string& what, const std::string& name, const TensorType& t, const Location& loc,
                      std::vector<std::string>& errors) {
  const std::string at = at_decl(loc);
  if (!t.is_static()) errors.push_back(fmt::format("{}{} @{}: type {} must be static", at, what, name, t.str()));
  for (const Dim& d : t.dims)
    if (d.is_static() && d.value <= 0) errors.push_back(fmt::format("{}{} @{}: dims must be positive", at, what, name));
  const DTypeInfo& info = dtype_info(t.dtype);
  if (info.block_size > 1 && (t.rank() == 0 || !t.dims.back().is_static() || t.dims.back().value % info.block_size))
    errors.push_back(fmt::format("{}{} @{}: rows of {} must be a multiple of the {} block size {}", at, what, name,
                                 t.rank() ? dim_str(t.dims.back()) : "?", info.name, info.block_size));
}

void verify_function(const Module& m, const Function& f, std::vector<std::string>& errors) {
  std::unordered_set<const Value*> defined;
  std::set<std::string> arg_names;
  for (const auto& a : f.args) {
    if (!a->name.empty() && !arg_names.insert(a->name).second)
      errors.push_back(fmt::format("{}: argument %{} declared twice", where(f, f.loc), a->name));
    defined.insert(a.get());
  }
  for (const auto& op : f.ops) {
    const OpDef& d = op->op_def();
    std::string at = fmt::format("{}: '{}'", where(f, op->loc), d.name);
    int n = op->num_operands();
    if (n < d.min_operands || (d.max_operands >= 0 && n > d.max_operands)) {
      errors.push_back(d.min_operands == d.max_operands
                           ? fmt::format("{}: expects {} operands, got {}", at, d.min_operands, n)
                           : fmt::format("{}: expects {} to {} operands, got {}", at, d.min_operands,
                                         d.max_operands < 0 ? std::string("any") : std::to_string(d.max_operands), n));
      defined.insert(op.get());
      continue;
    }
    bool operands_ok = true;
    for (int i = 0; i < n; ++i)
      if (!op->operands[i] || !defined.count(op->operands[i])) {
        errors.push_back(fmt::format("{}: operand #{} is used before it is defined", at, i));
        operands_ok = false;
      }
    if (operands_ok) {
      try {
        TensorType t = d.infer(InferContext{&m, *op, true});
        if (t != op->type)
          errors.push_back(fmt::format("{}: result type is {} but the operands give {}", at, op->type.str(), t.str()));
      } catch (const OpError& e) {
        errors.push_back(fmt::format("{}: {}", at, e.what()));
      }
    }
    defined.insert(op.get());
  }
  if (f.results.empty()) errors.push_back(fmt::format("{}: function @{} returns nothing", where(f, f.loc), f.name));
  for (const Value* r : f.results)
    if (!r || !defined.count(r))
      errors.push_back(fmt::format("{}: function @{} returns an undefined value", where(f, f.loc), f.name));
}

}  // namespace

std::vector<std::string> verify(const Module& m) {
  std::vector<std::string> errors;
  std::set<std::string> names;
  for (const WeightDecl& w : m.weights) {
    if (!names.insert(w.name).second) errors.push_back(fmt::format("{}symbol @{} declared twice", at_decl(w.loc), w.name));
    verify_decl_type("weight", w.name, w.type, w.loc, errors);
  }
  for (const StateDecl& s : m.states) {
    if (!names.insert(s.name).second) errors.push_back(fmt::format("{}symbol @{} declared twice", at_decl(s.loc), s.name));
    verify_decl_type("state", s.name, s.type, s.loc, errors);
  }
  for (const auto& f : m.functions) {
    if (!names.insert(f->name).second)
      errors.push_back(fmt::format("{}symbol @{} declared twice", at_decl(f->loc), f->name));
    verify_function(m, *f, errors);
  }
  return errors;
}

void verify_or_throw(const Module& m, const std::string& source) {
  std::vector<std::string> errors = verify(m);
  if (errors.empty()) return;
  std::string msg;
  for (const std::string& e : errors) msg += (msg.empty() ? "" : "\n") + source + ":" + e;
  throw Error(msg);
}

}  // namespace nibble
