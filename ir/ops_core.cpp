// Module references, embedding lookup, dequantization and matrix products.
#include "ir/op_registry.h"

namespace nibble {

static TensorType infer_weight(const InferContext& c) {
  auto ref = c.op.attrs.get_symbol("ref");
  op_check(ref.has_value(), "needs attribute 'ref' (a @symbol naming a weight)");
  if (!c.module) return c.op.type;
  const WeightDecl* w = c.module->find_weight(*ref);
  op_check(w != nullptr, "unknown weight @{}", *ref);
  return w->type;
}

static TensorType infer_state(const InferContext& c) {
  auto ref = c.op.attrs.get_symbol("ref");
  op_check(ref.has_value(), "needs attribute 'ref' (a @symbol naming a state)");
  if (!c.module) return c.op.type;
  const StateDecl* s = c.module->find_state(*ref);
  op_check(s != nullptr, "unknown state @{}", *ref);
  return s->type;
}

// embedding(table: T[V, D], ids: i32[...]) -> f32[..., D]
static TensorType infer_embedding(const InferContext& c) {
  const TensorType& table = operand_type(c, 0);
  const TensorType& ids = operand_type(c, 1);
  op_check(table.rank() == 2, "table must be 2-D [vocab, dim], got {}", table.str());
  op_check(ids.dtype == DType::I32, "ids must be i32, got {}", ids.str());
  op_check(dtype_info(table.dtype).dequantize_row != nullptr, "table type {} cannot be decoded",
           dtype_name(table.dtype));
  std::vector<Dim> dims = ids.dims;
  dims.push_back(table.dims[1]);
  return {DType::F32, dims};
}

// dequant(w: T[...]) -> f32[...]
static TensorType infer_dequant(const InferContext& c) {
  const TensorType& w = operand_type(c, 0);
  op_check(w.dtype != DType::F32 && dtype_info(w.dtype).dequantize_row != nullptr,
           "operand must be a quantized or 16-bit float tensor, got {}", w.str());
  return {DType::F32, w.dims};
}

static void check_weight_rows(const TensorType& w, const Dim& k) {
  const DTypeInfo& info = dtype_info(w.dtype);
  op_check(!k.is_static() || k.value % info.block_size == 0,
           "K = {} is not a multiple of the {} block size {}", dim_str(k), info.name, info.block_size);
}

// matmul(a: f32[..., M, K], b: [N, K] (transpose_b) or [K, N]) -> f32[..., M, N]
static TensorType infer_matmul(const InferContext& c) {
  const TensorType& a = operand_type(c, 0);
  const TensorType& b = operand_type(c, 1);
  expect_dtype_float(c, 0);
  op_check(a.rank() >= 1, "a must have rank >= 1");
  op_check(b.rank() == 2, "b must be 2-D, got {}", b.str());
  op_check(!is_quantized(b.dtype), "b is quantized ({}): dequantize it or use qmatmul", dtype_name(b.dtype));
  op_check(b.dtype == DType::F32 || b.dtype == DType::F16 || b.dtype == DType::BF16,
           "b must be f32, f16 or bf16, got {}", dtype_name(b.dtype));
  bool tb = c.op.attrs.bool_or("transpose_b", false);
  const Dim& k_b = tb ? b.dims[1] : b.dims[0];
  const Dim& n = tb ? b.dims[0] : b.dims[1];
  op_check(a.dim(-1) == k_b, "contraction mismatch: a has K = {}, b has K = {}", dim_str(a.dim(-1)), dim_str(k_b));
  std::vector<Dim> dims = a.dims;
  dims.back() = n;
  return {DType::F32, dims};
}

// qmatmul(a: [..., M, K], w: T[N, K], [bias: f32[N]], [residual: f32[..., M, N]]) {bias, residual}
// -> f32[..., M, N]: dequantization fused into the dot product, w stays packed. `a` is f32 or the
// weight format's activation format (dtype_info(T).vec_dot_type) made by `quantize`. The optional
// epilogue adds a bias per column and a residual tensor (folded by fuse-elementwise).
static TensorType infer_qmatmul(const InferContext& c) {
  const TensorType& a = operand_type(c, 0);
  const TensorType& w = operand_type(c, 1);
  op_check(w.rank() == 2, "w must be 2-D [N, K], got {}", w.str());
  op_check(dtype_info(w.dtype).dequantize_row != nullptr, "w type {} cannot be decoded", dtype_name(w.dtype));
  DType act = dtype_info(w.dtype).vec_dot_type;
  op_check(a.dtype == DType::F32 || a.dtype == act, "a must be f32 or {} (the activation format of {}), got {}",
           dtype_name(act), dtype_name(w.dtype), dtype_name(a.dtype));
  op_check(a.rank() >= 1 && a.dim(-1) == w.dims[1], "contraction mismatch: a has K = {}, w has K = {}",
           a.rank() ? dim_str(a.dim(-1)) : "?", dim_str(w.dims[1]));
  check_weight_rows(w, w.dims[1]);
  std::vector<Dim> dims = a.dims;
  dims.back() = w.dims[0];
  bool bias = c.op.attrs.bool_or("bias", false), residual = c.op.attrs.bool_or("residual", false);
  op_check(c.op.num_operands() == 2 + int(bias) + int(residual),
           "has {} operands but the attributes say bias = {}, residual = {}", c.op.num_operands(), bias, residual);
  int next = 2;
  if (bias) {
    const TensorType& b = operand_type(c, next++);
    op_check(b.dtype == DType::F32 && b.rank() == 1 && b.dims[0] == w.dims[0], "bias must be f32[{}], got {}",
             dim_str(w.dims[0]), b.str());
  }
  if (residual) {
    const TensorType& r = operand_type(c, next++);
    op_check(r.dtype == DType::F32 && r.dims == dims, "residual must be f32{}, got {}", dims_str(dims), r.str());
  }
  return {DType::F32, dims};
}

// quantize(x: f32[..., K]) -> T[..., K] (T from the declared type): rows encoded in a block format,
// as ggml quantizes activations before a quantized dot product.
static TensorType infer_quantize(const InferContext& c) {
  op_check(c.has_declared_type, "quantize needs its result type");
  expect_dtype_float(c, 0);
  const TensorType& x = operand_type(c, 0);
  const TensorType& r = c.op.type;
  op_check(r.dims == x.dims, "result dims {} differ from the input's {}", dims_str(r.dims), dims_str(x.dims));
  op_check(dtype_info(r.dtype).quantize_row != nullptr && r.dtype != DType::F32, "cannot quantize to {}",
           dtype_name(r.dtype));
  op_check(x.rank() >= 1, "x must have rank >= 1");
  check_weight_rows(r, x.dim(-1));
  return r;
}

void register_core_ops(std::vector<OpDef>& d) {
  d.push_back({"weight", "reads the module weight named by @ref", 0, 0, false, false, infer_weight});
  d.push_back({"state", "reads the persistent state buffer named by @ref (the KV cache)", 0, 0, false, false,
               infer_state});
  d.push_back({"embedding", "rows of a (possibly quantized) table selected by i32 ids, as f32", 2, 2, false,
               false, infer_embedding});
  d.push_back({"dequant", "decodes a quantized or 16-bit tensor to f32", 1, 1, false, false, infer_dequant});
  d.push_back({"matmul", "a[..., M, K] x b -> [..., M, N]; b is [N, K] when transpose_b", 2, 2, false, false,
               infer_matmul});
  d.push_back({"qmatmul",
               "a[..., M, K] x packed w[N, K]^T (+ bias, + residual): dequantization fused into the dot product", 2,
               4, false, false, infer_qmatmul});
  d.push_back({"quantize", "encodes f32 rows in a block format (activations for a quantized dot product)", 1, 1,
               false, false, infer_quantize, true});
}

}  // namespace nibble
