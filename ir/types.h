// Tensor types: an element type and dimensions, each static (64) or symbolic (n_tokens), so one
// graph serves prefill and decode. Printed as `f32[n_tokens, 64]`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/dtype.h"

namespace nibble {

struct Dim {
  int64_t value = 0;   // the size when static
  std::string symbol;  // non-empty when symbolic: bound at run time

  Dim() = default;
  Dim(int64_t v) : value(v) {}  // NOLINT: a static size converts implicitly
  static Dim sym(std::string name) { Dim d; d.symbol = std::move(name); return d; }
  bool is_static() const { return symbol.empty(); }
  bool operator==(const Dim& o) const { return value == o.value && symbol == o.symbol; }
  bool operator!=(const Dim& o) const { return !(*this == o); }
};

struct TensorType {
  DType dtype = DType::F32;
  std::vector<Dim> dims;

  TensorType() = default;
  TensorType(DType t, std::vector<Dim> d) : dtype(t), dims(std::move(d)) {}
  int rank() const { return int(dims.size()); }
  const Dim& dim(int i) const { return dims[i < 0 ? dims.size() + i : i]; }
  bool is_static() const;
  // Product of dims; only for static types.
  int64_t num_elements() const;
  // Product of the static dims (symbolic dims count as 1).
  int64_t static_elements() const;
  bool operator==(const TensorType& o) const { return dtype == o.dtype && dims == o.dims; }
  bool operator!=(const TensorType& o) const { return !(*this == o); }
  std::string str() const;
};

std::string dim_str(const Dim& d);

}  // namespace nibble
