#include "ir/attributes.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace nibble {

const Attribute* Attrs::find(const std::string& key) const {
  auto it = map_.find(key);
  return it == map_.end() ? nullptr : &it->second;
}

std::optional<int64_t> Attrs::get_int(const std::string& key) const {
  const Attribute* a = find(key);
  if (a && std::holds_alternative<int64_t>(*a)) return std::get<int64_t>(*a);
  return std::nullopt;
}

std::optional<double> Attrs::get_float(const std::string& key) const {
  const Attribute* a = find(key);
  if (a && std::holds_alternative<double>(*a)) return std::get<double>(*a);
  if (a && std::holds_alternative<int64_t>(*a)) return double(std::get<int64_t>(*a));
  return std::nullopt;
}

std::optional<bool> Attrs::get_bool(const std::string& key) const {
  const Attribute* a = find(key);
  if (a && std::holds_alternative<bool>(*a)) return std::get<bool>(*a);
  return std::nullopt;
}

std::optional<std::string> Attrs::get_string(const std::string& key) const {
  const Attribute* a = find(key);
  if (a && std::holds_alternative<std::string>(*a)) return std::get<std::string>(*a);
  return std::nullopt;
}

std::optional<std::string> Attrs::get_symbol(const std::string& key) const {
  const Attribute* a = find(key);
  if (a && std::holds_alternative<SymbolRef>(*a)) return std::get<SymbolRef>(*a).name;
  return std::nullopt;
}

std::optional<std::vector<int64_t>> Attrs::get_ints(const std::string& key) const {
  const Attribute* a = find(key);
  if (a && std::holds_alternative<std::vector<int64_t>>(*a)) return std::get<std::vector<int64_t>>(*a);
  return std::nullopt;
}

const char* attribute_kind_name(const Attribute& a) {
  static const char* names[] = {"integer", "float", "bool", "string", "symbol", "integer array"};
  return names[a.index()];
}

std::string float_str(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string quote_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

static bool is_plain_symbol(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' || c == '$')) return false;
  return true;
}

std::string symbol_str(const std::string& name) { return "@" + (is_plain_symbol(name) ? name : quote_string(name)); }

std::string attribute_str(const Attribute& a) {
  struct Visitor {
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const { return float_str(v); }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::string& v) const { return quote_string(v); }
    std::string operator()(const SymbolRef& v) const { return symbol_str(v.name); }
    std::string operator()(const std::vector<int64_t>& v) const {
      return "[" + fmt::format("{}", fmt::join(v, ", ")) + "]";
    }
  };
  return std::visit(Visitor{}, a);
}

}  // namespace nibble
