// Shape ops (reshape, view, permute, concat) and argmax.
#include <algorithm>
#include <numeric>

#include "ir/op_registry.h"

namespace nibble {

// The symbolic dims of a type in order; reshape must keep them.
static std::vector<std::string> symbols(const TensorType& t) {
  std::vector<std::string> s;
  for (const Dim& d : t.dims)
    if (!d.is_static()) s.push_back(d.symbol);
  return s;
}

// reshape(x) -> the declared type: same element type, same symbolic dims in order, same static size.
static TensorType infer_reshape(const InferContext& c) {
  op_check(c.has_declared_type, "reshape needs its result type");
  const TensorType& x = operand_type(c, 0);
  const TensorType& r = c.op.type;
  op_check(x.dtype == r.dtype, "cannot change element type {} to {}", dtype_name(x.dtype), dtype_name(r.dtype));
  op_check(symbols(x) == symbols(r), "symbolic dims of {} and {} differ", x.str(), r.str());
  op_check(x.static_elements() == r.static_elements(), "{} and {} have different element counts", x.str(),
           r.str());
  return r;
}

// view(x) {axis, offset, size}: the slice [offset, offset + size) of a static axis.
static TensorType infer_view(const InferContext& c) {
  const TensorType& x = operand_type(c, 0);
  auto axis = c.op.attrs.get_int("axis");
  auto offset = c.op.attrs.get_int("offset");
  auto size = c.op.attrs.get_int("size");
  op_check(axis && offset && size, "needs integer attributes 'axis', 'offset' and 'size'");
  op_check(*axis >= 0 && *axis < x.rank(), "axis {} out of range for rank {}", *axis, x.rank());
  const Dim& d = x.dims[*axis];
  op_check(d.is_static(), "cannot slice the symbolic dim {}", d.symbol);
  op_check(*offset >= 0 && *size > 0 && *offset <= d.value - *size, "slice [{}, {}+{}) out of range [0, {})",
           *offset, *offset, *size, d.value);
  TensorType r = x;
  r.dims[*axis] = Dim(*size);
  return r;
}

// permute(x) {perm}: result dim i is x dim perm[i].
static TensorType infer_permute(const InferContext& c) {
  const TensorType& x = operand_type(c, 0);
  auto perm = c.op.attrs.get_ints("perm");
  op_check(perm.has_value(), "needs integer array attribute 'perm'");
  op_check(int(perm->size()) == x.rank(), "perm has {} entries for rank {}", perm->size(), x.rank());
  std::vector<int64_t> sorted = *perm;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < x.rank(); ++i) op_check(sorted[i] == i, "perm {} is not a permutation", attribute_str(*perm));
  TensorType r = x;
  for (int i = 0; i < x.rank(); ++i) r.dims[i] = x.dims[(*perm)[i]];
  return r;
}

// concat(a, b, ...) {axis}: joined along a static axis; other dims equal.
static TensorType infer_concat(const InferContext& c) {
  const TensorType& a = operand_type(c, 0);
  auto axis = c.op.attrs.get_int("axis");
  op_check(axis.has_value(), "needs integer attribute 'axis'");
  op_check(*axis >= 0 && *axis < a.rank(), "axis {} out of range for rank {}", *axis, a.rank());
  TensorType r = a;
  op_check(a.dims[*axis].is_static(), "cannot concatenate along a symbolic dim");
  for (int i = 1; i < c.op.num_operands(); ++i) {
    const TensorType& b = operand_type(c, i);
    op_check(b.dtype == a.dtype && b.rank() == a.rank(), "operand #{} {} does not match {}", i, b.str(), a.str());
    for (int k = 0; k < a.rank(); ++k)
      if (k != *axis) op_check(b.dims[k] == a.dims[k], "operand #{} differs in dim {}", i, k);
    op_check(b.dims[*axis].is_static(), "cannot concatenate along a symbolic dim");
    r.dims[*axis].value += b.dims[*axis].value;
  }
  return r;
}

// argmax(x: f32[..., N]) -> i32[...]: index of the largest element of each row, lowest on ties.
static TensorType infer_argmax(const InferContext& c) {
  expect_dtype_float(c, 0);
  const TensorType& x = operand_type(c, 0);
  op_check(x.rank() >= 1, "x must have rank >= 1");
  std::vector<Dim> dims(x.dims.begin(), x.dims.end() - 1);
  return {DType::I32, dims};
}

void register_shape_ops(std::vector<OpDef>& d) {
  d.push_back({"reshape", "the same elements under another shape", 1, 1, false, false, infer_reshape, true});
  d.push_back({"view", "a contiguous slice of one static axis", 1, 1, false, false, infer_view});
  d.push_back({"permute", "reorders dims: result dim i is input dim perm[i]", 1, 1, false, false, infer_permute});
  d.push_back({"concat", "joins tensors along an axis", 2, -1, false, false, infer_concat});
  d.push_back({"argmax", "index of the largest element along the last dim (lowest on ties)", 1, 1, false, false,
               infer_argmax});
}

}  // namespace nibble
