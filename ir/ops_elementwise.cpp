// Element-wise and row-wise (normalization, softmax) ops on f32 activations.
#include "ir/op_registry.h"

namespace nibble {

// Binary ops broadcast b over the leading dims of a: b's dims must be a suffix of a's.
static TensorType infer_binary(const InferContext& c) {
  const TensorType& a = operand_type(c, 0);
  const TensorType& b = operand_type(c, 1);
  expect_dtype_float(c, 0);
  expect_dtype_float(c, 1);
  op_check(is_suffix(b.dims, a.dims), "cannot broadcast {} to {}: b's dims must be trailing dims of a",
           dims_str(b.dims), dims_str(a.dims));
  return a;
}

static TensorType infer_unary(const InferContext& c) {
  expect_dtype_float(c, 0);
  return operand_type(c, 0);
}

// swiglu(gate, up) = silu(gate) * up, same shapes.
static TensorType infer_swiglu(const InferContext& c) {
  expect_dtype_float(c, 0);
  expect_dtype_float(c, 1);
  op_check(operand_type(c, 0).dims == operand_type(c, 1).dims, "gate {} and up {} differ in shape",
           operand_type(c, 0).str(), operand_type(c, 1).str());
  return operand_type(c, 0);
}

static void check_eps(const InferContext& c) {
  auto eps = c.op.attrs.get_float("eps");
  op_check(eps.has_value(), "needs float attribute 'eps'");
  op_check(*eps >= 0 && *eps < 1, "eps = {} is out of range [0, 1)", *eps);
}

// rms_norm(x: f32[..., D], [scale: f32[D]]) {eps}: x / sqrt(mean(x^2) + eps) (* scale)
// layer_norm(x, [scale], [bias]) {eps}: (x - mean) / sqrt(var + eps) (* scale + bias)
static TensorType infer_norm(const InferContext& c) {
  expect_dtype_float(c, 0);
  check_eps(c);
  const TensorType& x = operand_type(c, 0);
  op_check(x.rank() >= 1, "x must have rank >= 1");
  for (int i = 1; i < c.op.num_operands(); ++i) {
    const TensorType& s = operand_type(c, i);
    op_check(s.dtype == DType::F32 && s.rank() == 1 && s.dims[0] == x.dim(-1), "operand #{} must be f32[{}], got {}",
             i, dim_str(x.dim(-1)), s.str());
  }
  return x;
}

// softmax(x: f32[..., N], [mask: f32, trailing dims of x]) {scale}: softmax(x * scale + mask) over N.
static TensorType infer_softmax(const InferContext& c) {
  expect_dtype_float(c, 0);
  if (c.op.num_operands() > 1) {
    expect_dtype_float(c, 1);
    op_check(is_suffix(operand_type(c, 1).dims, operand_type(c, 0).dims), "mask {} does not broadcast to {}",
             operand_type(c, 1).str(), operand_type(c, 0).str());
  }
  return operand_type(c, 0);
}

void register_elementwise_ops(std::vector<OpDef>& d) {
  d.push_back({"add", "a + b, b broadcast over a's leading dims", 2, 2, false, true, infer_binary});
  d.push_back({"mul", "a * b, b broadcast over a's leading dims", 2, 2, false, true, infer_binary});
  d.push_back({"silu", "x * sigmoid(x)", 1, 1, false, true, infer_unary});
  d.push_back({"gelu", "gelu(x), tanh approximation", 1, 1, false, true, infer_unary});
  d.push_back({"swiglu", "silu(gate) * up", 2, 2, false, true, infer_swiglu});
  d.push_back({"rms_norm", "x / sqrt(mean(x^2) + eps) over the last dim, times an optional scale", 1, 2, false,
               false, infer_norm});
  d.push_back({"layer_norm", "(x - mean) / sqrt(var + eps) over the last dim, optional scale and bias", 1, 3,
               false, false, infer_norm});
  d.push_back({"softmax", "softmax(x * scale + mask) over the last dim", 1, 2, false, false, infer_softmax});
}

}  // namespace nibble
