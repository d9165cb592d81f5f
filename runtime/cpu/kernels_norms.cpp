// Built-in row-wise kernels: rms_norm, layer_norm, softmax. Sums run in float over 64 (or 32)
// independent lanes, which keeps them within ~1e-6 relative of the reference's double sums.
#include "runtime/cpu/builtin_kernels.h"
#include "runtime/cpu/kernels_common.h"

namespace nibble::rt::kern {

// bufs: x, scale (nullable), out. y = (x * r) * s, in the reference's order.
NB_CLONES void rms_norm_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  const float* x = buf<const float>(a, 0);
  const float* s = buf<const float>(a, 1);
  float* o = buf<float>(a, 2);
  const int64_t C = a->ints[0];
  const float eps = a->floats[0];
  for (int64_t r = tb; r < te; ++r) {
    const float* xr = x + r * C;
    float* orow = o + r * C;
    const float rs = 1.0f / std::sqrt(sum_sq(xr, C) / float(C) + eps);
    if (s) {
      for (int64_t i = 0; i < C; ++i) orow[i] = (xr[i] * rs) * s[i];
    } else {
      for (int64_t i = 0; i < C; ++i) orow[i] = xr[i] * rs;
    }
  }
}

// bufs: x, scale (nullable), bias (nullable), out. Two-pass mean/variance.
NB_CLONES void layer_norm_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  const float* x = buf<const float>(a, 0);
  const float* s = buf<const float>(a, 1);
  const float* b = buf<const float>(a, 2);
  float* o = buf<float>(a, 3);
  const int64_t C = a->ints[0];
  const float eps = a->floats[0];
  for (int64_t r = tb; r < te; ++r) {
    const float* xr = x + r * C;
    float* orow = o + r * C;
    const float mean = sum_of(xr, C) / float(C);
    const float rs = 1.0f / std::sqrt(sum_sq_centered(xr, C, mean) / float(C) + eps);
    for (int64_t i = 0; i < C; ++i) orow[i] = (xr[i] - mean) * rs;
    if (s)
      for (int64_t i = 0; i < C; ++i) orow[i] *= s[i];
    if (b)
      for (int64_t i = 0; i < C; ++i) orow[i] += b[i];
  }
}

// bufs: x, mask (nullable; row r uses mask row r % mask_rows), out. ints: C, mask_rows.
// softmax(x * scale + mask), max-subtracted; a row that is all -inf becomes zeros.
NB_CLONES void softmax_f32(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  const float* x = buf<const float>(a, 0);
  const float* mask = buf<const float>(a, 1);
  float* o = buf<float>(a, 2);
  const int64_t C = a->ints[0];
  const int64_t mask_rows = a->ints[1] > 0 ? a->ints[1] : 1;
  const float scale = a->floats[0];
  for (int64_t r = tb; r < te; ++r) {
    const float* xr = x + r * C;
    float* orow = o + r * C;
    if (mask) {
      const float* m = mask + (r % mask_rows) * C;
      for (int64_t i = 0; i < C; ++i) orow[i] = xr[i] * scale + m[i];
    } else {
      for (int64_t i = 0; i < C; ++i) orow[i] = xr[i] * scale;
    }
    const float mx = max_of(orow, C);
    if (mx == -INFINITY) {
      for (int64_t i = 0; i < C; ++i) orow[i] = 0.0f;
      continue;
    }
    for (int64_t i = 0; i < C; ++i) orow[i] = exp_approx(orow[i] - mx);
    const float sum = sum_of(orow, C);
    const float inv = sum > 0 ? 1.0f / sum : 0.0f;
    for (int64_t i = 0; i < C; ++i) orow[i] *= inv;
  }
}

}  // namespace nibble::rt::kern
