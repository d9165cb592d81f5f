#include "ir/printer.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

#include "ir/op_registry.h"

namespace nibble {

namespace {

bool is_numeric(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

std::string attrs_str(const Attrs& attrs) {
  if (attrs.empty()) return "";
  std::string s = " {";
  bool first = true;
  for (const auto& [k, v] : attrs.entries()) {
    s += (first ? "" : ", ") + k + " = " + attribute_str(v);
    first = false;
  }
  return s + "}";
}

class FunctionPrinter {
 public:
  explicit FunctionPrinter(const Function& f) : f_(f) {}

  std::string print() {
    std::string out = "  func " + symbol_str(f_.name) + "(";
    for (size_t i = 0; i < f_.args.size(); ++i) {
      const Value* a = f_.args[i].get();
      out += (i ? ", " : "") + name_of(a, "arg" + std::to_string(i)) + ": " + a->type.str();
    }
    out += ") -> (";
    for (size_t i = 0; i < f_.results.size(); ++i) out += (i ? ", " : "") + f_.results[i]->type.str();
    out += ") {\n";
    for (const auto& op : f_.ops) {
      out += "    " + name_of(op.get(), "") + " = " + op->op_name() + "(";
      for (int i = 0; i < op->num_operands(); ++i) out += (i ? ", " : "") + ref(op->operands[i]);
      out += ")" + attrs_str(op->attrs) + " : " + op->type.str() + "\n";
    }
    out += "    return ";
    for (size_t i = 0; i < f_.results.size(); ++i) out += (i ? ", " : "") + ref(f_.results[i]);
    return out + "\n  }\n";
  }

 private:
  // Assigns the printed name at definition: user names kept (made unique), others numbered.
  std::string name_of(const Value* v, const std::string& fallback) {
    std::string n = v->name;
    if (n.empty() || is_numeric(n)) n = fallback.empty() ? std::to_string(next_number_++) : fallback;
    // Built names may hold characters the lexer ends a %name at; keep the text parseable.
    for (char& c : n)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') c = '_';
    if (!used_.insert(n).second) {
      int k = 1;
      while (!used_.insert(n + "_" + std::to_string(k)).second) ++k;
      n += "_" + std::to_string(k);
    }
    names_[v] = n;
    return "%" + n;
  }

  std::string ref(const Value* v) {
    auto it = names_.find(v);
    return it == names_.end() ? "%<undefined>" : "%" + it->second;
  }

  const Function& f_;
  std::unordered_map<const Value*, std::string> names_;
  std::set<std::string> used_;
  int next_number_ = 0;
};

}  // namespace

std::string print_module(const Module& m) {
  std::string out = "module " + symbol_str(m.name);
  if (!m.attrs.empty()) out += " attributes" + attrs_str(m.attrs);
  out += " {\n";
  for (const WeightDecl& w : m.weights)
    out += "  weight " + symbol_str(w.name) + " : " + w.type.str() + attrs_str(w.attrs) + "\n";
  for (const StateDecl& s : m.states)
    out += "  state " + symbol_str(s.name) + " : " + s.type.str() + attrs_str(s.attrs) + "\n";
  for (const auto& f : m.functions) out += FunctionPrinter(*f).print();
  return out + "}\n";
}

}  // namespace nibble
