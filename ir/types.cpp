#include "ir/types.h"

#include <fmt/format.h>

namespace nibble {

bool TensorType::is_static() const {
  for (const Dim& d : dims)
    if (!d.is_static()) return false;
  return true;
}

int64_t TensorType::num_elements() const {
  int64_t n = 1;
  for (const Dim& d : dims) n *= d.value;
  return n;
}

int64_t TensorType::static_elements() const {
  int64_t n = 1;
  for (const Dim& d : dims)
    if (d.is_static()) n *= d.value;
  return n;
}

std::string dim_str(const Dim& d) { return d.is_static() ? std::to_string(d.value) : d.symbol; }

std::string TensorType::str() const {
  std::string s = dtype_name(dtype);
  s += '[';
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += dim_str(dims[i]);
  }
  s += ']';
  return s;
}

}  // namespace nibble
