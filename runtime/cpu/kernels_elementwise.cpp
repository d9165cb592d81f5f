// Built-in element-wise kernels: add, mul, swiglu, silu, gelu, copy_bytes, argmax.
// Plain loops over contiguous rows: the compiler vectorizes each ISA clone. In-place use
// (out == an input) is fine: every element is read before it is written, at the same index.
#include <cstring>

#include "runtime/cpu/builtin_kernels.h"
#include "runtime/cpu/kernels_common.h"

namespace nibble::rt::kern {

namespace {

// Binary op over rows [tb, te) of C columns; b_rows > 0: b row r % b_rows (1: broadcast), else b
// has as many rows as a.
template <typename Op>
NB_INLINE void binary_rows(const NibbleKernelArgs* a, int64_t tb, int64_t te, Op op) {
  const float* x = buf<const float>(a, 0);
  const float* y = buf<const float>(a, 1);
  float* o = buf<float>(a, 2);
  const int64_t C = a->ints[0], b_rows = a->ints[1];
  if (b_rows <= 0) {  // one flat loop: also fast when C is tiny
    for (int64_t i = tb * C; i < te * C; ++i) o[i] = op(x[i], y[i]);
    return;
  }
  for (int64_t r = tb; r < te; ++r) {
    const float* xr = x + r * C;
    const float* yr = y + (r % b_rows) * C;
    float* orow = o + r * C;
    for (int64_t i = 0; i < C; ++i) orow[i] = op(xr[i], yr[i]);
  }
}

}  // namespace

NB_CLONES void add_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  binary_rows(a, tb, te, [](float x, float y) { return x + y; });
}

NB_CLONES void mul_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  binary_rows(a, tb, te, [](float x, float y) { return x * y; });
}

NB_CLONES void swiglu_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  const float* g = buf<const float>(a, 0);
  const float* u = buf<const float>(a, 1);
  float* o = buf<float>(a, 2);
  const int64_t C = a->ints[0];
  for (int64_t i = tb * C; i < te * C; ++i) o[i] = silu_of(g[i]) * u[i];
}

NB_CLONES void silu_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  const float* x = buf<const float>(a, 0);
  float* o = buf<float>(a, 1);
  const int64_t C = a->ints[0];
  for (int64_t i = tb * C; i < te * C; ++i) o[i] = silu_of(x[i]);
}

NB_CLONES void gelu_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  const float* x = buf<const float>(a, 0);
  float* o = buf<float>(a, 1);
  const int64_t C = a->ints[0];
  for (int64_t i = tb * C; i < te * C; ++i) o[i] = gelu_of(x[i]);
}

void copy_bytes(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  const int64_t row = a->ints[0];
  const char* src = buf<const char>(a, 0) + tb * row;
  char* dst = buf<char>(a, 1) + tb * row;
  if (src != dst) std::memmove(dst, src, size_t((te - tb) * row));
}

// First index of the row maximum, NaN never winning (as `x[c] > x[best]` scans do); a leading
// NaN wins by default, as in the reference. Vector max, then a scan for its first occurrence.
NB_CLONES void argmax_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  const float* x = buf<const float>(a, 0);
  int32_t* o = buf<int32_t>(a, 1);
  const int64_t C = a->ints[0];
  for (int64_t r = tb; r < te; ++r) {
    const float* xr = x + r * C;
    int64_t best = 0;
    if (C > 0 && xr[0] == xr[0]) {
      const float m = max_of(xr, C);
      // Find its first occurrence a block at a time: an OR over 64 compares vectorizes, an
      // early-exit scan does not.
      int64_t i = 0;
      for (; i + 64 <= C; i += 64) {
        int hit = 0;
        for (int j = 0; j < 64; ++j) hit |= xr[i + j] == m;
        if (hit) break;
      }
      while (i < C && !(xr[i] == m)) ++i;
      best = i < C ? i : 0;
    }
    o[r] = int32_t(best);
  }
}

}  // namespace nibble::rt::kern
