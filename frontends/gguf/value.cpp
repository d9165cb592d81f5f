// Metadata values: type names, checked accessors and builders.
#include <bit>
#include <cmath>
#include <limits>

#include "frontends/gguf/gguf.h"
#include "support/error.h"

namespace nibble::gguf {

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::U8: return "u8";
    case ValueType::I8: return "i8";
    case ValueType::U16: return "u16";
    case ValueType::I16: return "i16";
    case ValueType::U32: return "u32";
    case ValueType::I32: return "i32";
    case ValueType::F32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::U64: return "u64";
    case ValueType::I64: return "i64";
    case ValueType::F64: return "f64";
  }
  return "invalid";
}

namespace {

bool is_unsigned(ValueType t) {
  return t == ValueType::U8 || t == ValueType::U16 || t == ValueType::U32 || t == ValueType::U64;
}
bool is_signed(ValueType t) {
  return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}

}  // namespace

bool Value::is_integer() const { return is_unsigned(type) || is_signed(type); }

int64_t Value::as_int(std::string_view key) const {
  if (is_unsigned(type)) {
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail("metadata key '{}': value {} does not fit in int64", key, u);
    return static_cast<int64_t>(u);
  }
  if (is_signed(type)) return i;
  fail("metadata key '{}': expected an integer, got {}", key, value_type_name(type));
}

double Value::as_float(std::string_view key) const {
  if (is_float()) return f;
  if (is_unsigned(type)) return static_cast<double>(u);
  if (is_signed(type)) return static_cast<double>(i);
  fail("metadata key '{}': expected a number, got {}", key, value_type_name(type));
}

bool Value::as_bool(std::string_view key) const {
  if (type != ValueType::BOOL) fail("metadata key '{}': expected a bool, got {}", key, value_type_name(type));
  return u != 0;
}

const std::string& Value::as_string(std::string_view key) const {
  if (type != ValueType::STRING) fail("metadata key '{}': expected a string, got {}", key, value_type_name(type));
  return s;
}

Value Value::of_uint(ValueType t, uint64_t v) {
  uint64_t max = 0;
  switch (t) {
    case ValueType::U8: max = UINT8_MAX; break;
    case ValueType::U16: max = UINT16_MAX; break;
    case ValueType::U32: max = UINT32_MAX; break;
    case ValueType::U64: max = UINT64_MAX; break;
    default: fail("Value::of_uint: {} is not an unsigned integer type", value_type_name(t));
  }
  if (v > max) fail("Value::of_uint: {} does not fit in {}", v, value_type_name(t));
  Value r;
  r.type = t;
  r.u = v;
  return r;
}

Value Value::of_int(ValueType t, int64_t v) {
  int64_t lo = 0, hi = 0;
  switch (t) {
    case ValueType::I8: lo = INT8_MIN, hi = INT8_MAX; break;
    case ValueType::I16: lo = INT16_MIN, hi = INT16_MAX; break;
    case ValueType::I32: lo = INT32_MIN, hi = INT32_MAX; break;
    case ValueType::I64: lo = INT64_MIN, hi = INT64_MAX; break;
    default: fail("Value::of_int: {} is not a signed integer type", value_type_name(t));
  }
  if (v < lo || v > hi) fail("Value::of_int: {} does not fit in {}", v, value_type_name(t));
  Value r;
  r.type = t;
  r.i = v;
  return r;
}

Value Value::of_float(ValueType t, double v) {
  if (t != ValueType::F32 && t != ValueType::F64)
    fail("Value::of_float: {} is not a float type", value_type_name(t));
  Value r;
  r.type = t;
  // Store what the file will hold, so a value compares equal to itself after a round trip.
  r.f = t == ValueType::F32 ? static_cast<double>(static_cast<float>(v)) : v;
  return r;
}

Value Value::of_bool(bool v) {
  Value r;
  r.type = ValueType::BOOL;
  r.u = v ? 1 : 0;
  return r;
}

Value Value::of_string(std::string v) {
  Value r;
  r.type = ValueType::STRING;
  r.s = std::move(v);
  return r;
}

Value Value::of_array(ValueType elem, std::vector<Value> elems) {
  for (size_t k = 0; k < elems.size(); ++k)
    if (elems[k].type != elem)
      fail("Value::of_array: element {} is {}, expected {}", k, value_type_name(elems[k].type),
           value_type_name(elem));
  Value r;
  r.type = ValueType::ARRAY;
  r.elem_type = elem;
  r.array = std::move(elems);
  return r;
}

bool Value::operator==(const Value& o) const {
  if (type != o.type) return false;
  if (is_unsigned(type) || type == ValueType::BOOL) return u == o.u;
  if (is_signed(type)) return i == o.i;
  if (is_float()) return std::bit_cast<uint64_t>(f) == std::bit_cast<uint64_t>(o.f);
  if (type == ValueType::STRING) return s == o.s;
  if (type == ValueType::ARRAY) return elem_type == o.elem_type && array == o.array;
  return true;
}

}  // namespace nibble::gguf
