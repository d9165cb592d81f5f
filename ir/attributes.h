// Op and declaration attributes: a small closed set of kinds, printed so they parse back exactly.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace nibble {

struct SymbolRef {
  std::string name;  // printed @name
  bool operator==(const SymbolRef& o) const { return name == o.name; }
};

using Attribute = std::variant<int64_t, double, bool, std::string, SymbolRef, std::vector<int64_t>>;

// Sorted by key so printing is deterministic.
class Attrs {
 public:
  void set(const std::string& key, Attribute v) { map_[key] = std::move(v); }
  bool has(const std::string& key) const { return map_.count(key) != 0; }
  void erase(const std::string& key) { map_.erase(key); }
  const Attribute* find(const std::string& key) const;
  bool empty() const { return map_.empty(); }
  const std::map<std::string, Attribute>& entries() const { return map_; }
  bool operator==(const Attrs& o) const { return map_ == o.map_; }

  // Typed reads; nullopt when absent or of another kind (verifiers report the kind mismatch).
  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;  // ints read as floats too
  std::optional<bool> get_bool(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  std::optional<std::string> get_symbol(const std::string& key) const;
  std::optional<std::vector<int64_t>> get_ints(const std::string& key) const;

  int64_t int_or(const std::string& key, int64_t d) const { return get_int(key).value_or(d); }
  double float_or(const std::string& key, double d) const { return get_float(key).value_or(d); }
  bool bool_or(const std::string& key, bool d) const { return get_bool(key).value_or(d); }
  std::string string_or(const std::string& key, const std::string& d) const { return get_string(key).value_or(d); }

 private:
  std::map<std::string, Attribute> map_;
};

const char* attribute_kind_name(const Attribute& a);
std::string attribute_str(const Attribute& a);
// Shortest text that reads back as the same double, always with a '.' or exponent.
std::string float_str(double v);
std::string quote_string(const std::string& s);
// @name, quoted when the name has characters outside [A-Za-z0-9_.$-].
std::string symbol_str(const std::string& name);

}  // namespace nibble
