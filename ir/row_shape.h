// How row-parallel kernels see a tensor type: rows (every dim but the last, flattened) x columns
// (the last dim). Shared by the code generators, which size dispatches and task counts from it.
#pragma once
#include <cstdint>
#include <string_view>

#include "ir/types.h"
#include "support/error.h"

namespace nibble {

// rows = fixed, times n_tokens when per_token (at most one dim may be the symbol n_tokens).
struct RowCount {
  int64_t fixed = 1;
  bool per_token = false;
};

// `who` names the caller in errors ("cpu codegen").
inline RowCount rows_of(const TensorType& t, std::string_view who) {
  RowCount r;
  for (int i = 0; i + 1 < t.rank(); ++i) {
    if (t.dims[i].is_static()) {
      r.fixed *= t.dims[i].value;
    } else if (t.dims[i].symbol == "n_tokens" && !r.per_token) {
      r.per_token = true;
    } else {
      fail("{}: unsupported symbolic dim '{}' in {}", who, t.dims[i].symbol, t.str());
    }
  }
  return r;
}

inline int64_t cols_of(const TensorType& t, std::string_view who) {
  if (t.rank() == 0) return 1;
  if (!t.dims.back().is_static()) fail("{}: the last dim of {} must be static", who, t.str());
  return t.dims.back().value;
}

}  // namespace nibble
