// Reference kernels: reshape, view, permute, concat, argmax.
#include "ir/interp/ref_kernels.h"

namespace nibble::ref {

void reshape(const KernelArgs& a) {
  if (a.in[0]->dtype == DType::I32) {
    a.out.i = a.in[0]->i;
  } else {
    a.out.f = a.in[0]->to_f32();
  }
}

// Row-major strides of a shape.
static std::vector<int64_t> strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int i = int(shape.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

// Calls fn(out_index, in_index) for every element, where the input index is given by
// per-output-dim input strides plus a base offset.
template <typename Fn>
static void for_each_index(const std::vector<int64_t>& out_shape, const std::vector<int64_t>& in_strides,
                           int64_t base, Fn fn) {
  int64_t total = 1;
  for (int64_t d : out_shape) total *= d;
  std::vector<int64_t> idx(out_shape.size(), 0);
  for (int64_t o = 0; o < total; ++o) {
    int64_t in = base;
    for (size_t d = 0; d < idx.size(); ++d) in += idx[d] * in_strides[d];
    fn(o, in);
    for (int d = int(idx.size()) - 1; d >= 0; --d) {
      if (++idx[d] < out_shape[d]) break;
      idx[d] = 0;
    }
  }
}

// Fills the output in order, reading the input at the strided index.
static void copy_indexed(const KernelArgs& a, const RefTensor& in, const std::vector<int64_t>& in_strides,
                         int64_t base) {
  if (in.dtype == DType::I32) {
    a.out.i.resize(size_t(a.out.numel()));
    for_each_index(a.out.shape, in_strides, base, [&](int64_t o, int64_t i) { a.out.i[o] = in.i[i]; });
  } else {
    std::vector<float> x = in.to_f32();
    a.out.f.resize(size_t(a.out.numel()));
    for_each_index(a.out.shape, in_strides, base, [&](int64_t o, int64_t i) { a.out.f[o] = x[i]; });
  }
}

void view(const KernelArgs& a) {
  const RefTensor& x = *a.in[0];
  int64_t axis = *a.op.attrs.get_int("axis"), offset = *a.op.attrs.get_int("offset");
  std::vector<int64_t> s = strides(x.shape);
  copy_indexed(a, x, s, offset * s[axis]);
}

void permute(const KernelArgs& a) {
  const RefTensor& x = *a.in[0];
  std::vector<int64_t> perm = *a.op.attrs.get_ints("perm");
  std::vector<int64_t> s = strides(x.shape), in_strides(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) in_strides[i] = s[perm[i]];
  copy_indexed(a, x, in_strides, 0);
}

void concat(const KernelArgs& a) {
  int64_t axis = *a.op.attrs.get_int("axis");
  std::vector<int64_t> out_strides = strides(a.out.shape);
  int64_t offset = 0;
  for (const RefTensor* in : a.in) {
    // Copy `in` into the output block starting at `offset` along the axis: iterate over the
    // input's shape, writing with the output's strides.
    std::vector<int64_t> in_s = strides(in->shape);
    std::vector<float> x = in->dtype == DType::I32 ? std::vector<float>() : in->to_f32();
    if (in->dtype == DType::I32) a.out.i.resize(size_t(a.out.numel()));
    else a.out.f.resize(size_t(a.out.numel()));
    for_each_index(in->shape, out_strides, offset * out_strides[axis], [&](int64_t i, int64_t o) {
      if (in->dtype == DType::I32) a.out.i[o] = in->i[i];
      else a.out.f[o] = x[i];
    });
    offset += in->shape[axis];
  }
}

void argmax(const KernelArgs& a) {
  std::vector<float> x = a.in[0]->to_f32();
  int64_t cols = a.in[0]->cols(), rows = a.in[0]->rows();
  a.out.i.resize(size_t(rows));
  for (int64_t r = 0; r < rows; ++r) {
    int64_t best = 0;
    for (int64_t c = 1; c < cols; ++c)
      if (x[r * cols + c] > x[r * cols + best]) best = c;
    a.out.i[r] = int32_t(best);
  }
}

}  // namespace nibble::ref
