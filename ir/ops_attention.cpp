// Rotary position embedding, the KV cache write, and attention over the cache.
#include "ir/op_registry.h"

namespace nibble {

static void check_positions(const InferContext& c, int i, const Dim& n) {
  const TensorType& pos = operand_type(c, i);
  op_check(pos.dtype == DType::I32 && pos.rank() == 1 && pos.dims[0] == n, "positions must be i32[{}], got {}",
           dim_str(n), pos.str());
}

// rope(x: f32[n, heads, head_dim], pos: i32[n]) {mode = "norm"|"neox", n_dims, freq_base, freq_scale}
static TensorType infer_rope(const InferContext& c) {
  expect_dtype_float(c, 0);
  const TensorType& x = operand_type(c, 0);
  op_check(x.rank() == 3, "x must be [n, heads, head_dim], got {}", x.str());
  check_positions(c, 1, x.dims[0]);
  auto mode = c.op.attrs.get_string("mode");
  op_check(mode == "norm" || mode == "neox", "attribute 'mode' must be \"norm\" or \"neox\"");
  auto n_dims = c.op.attrs.get_int("n_dims");
  op_check(n_dims.has_value(), "needs integer attribute 'n_dims'");
  op_check(x.dims[2].is_static() && *n_dims > 0 && *n_dims % 2 == 0 && *n_dims <= x.dims[2].value,
           "n_dims = {} must be even and in (0, head_dim = {}]", *n_dims, dim_str(x.dims[2]));
  auto base = c.op.attrs.get_float("freq_base");
  op_check(base.has_value() && *base > 0, "needs positive float attribute 'freq_base'");
  op_check(c.op.attrs.float_or("freq_scale", 1.0) > 0, "freq_scale must be positive");
  return x;
}

static void check_cache(const TensorType& cache) {
  op_check(cache.rank() == 3 && cache.is_static(), "cache must be static [n_ctx, kv_heads, head_dim], got {}",
           cache.str());
  op_check(cache.dtype == DType::F32 || cache.dtype == DType::F16, "cache must be f32 or f16, got {}",
           dtype_name(cache.dtype));
  // A zero kv_heads would divide by zero in the GQA check below.
  op_check(cache.static_elements() > 0, "cache dims must be positive, got {}", cache.str());
}

// kv_write(cache: T[n_ctx, kv_heads, d], x: f32[n, kv_heads, d], pos: i32[n]) -> cache
// Writes x[i] to cache row pos[i]; returns the updated cache so readers are ordered after it.
static TensorType infer_kv_write(const InferContext& c) {
  const TensorType& cache = operand_type(c, 0);
  const TensorType& x = operand_type(c, 1);
  check_cache(cache);
  expect_dtype_float(c, 1);
  op_check(x.rank() == 3 && x.dims[1] == cache.dims[1] && x.dims[2] == cache.dims[2],
           "x must be [n, {}, {}], got {}", dim_str(cache.dims[1]), dim_str(cache.dims[2]), x.str());
  check_positions(c, 2, x.dims[0]);
  return cache;
}

// attention(q: f32[n, heads, d], k: T[n_ctx, kv_heads, d], v: same, pos: i32[n]) {scale}
// Causal: query i attends to cache rows 0..pos[i]. heads must be a multiple of kv_heads (GQA).
static TensorType infer_attention(const InferContext& c) {
  expect_dtype_float(c, 0);
  const TensorType& q = operand_type(c, 0);
  const TensorType& k = operand_type(c, 1);
  const TensorType& v = operand_type(c, 2);
  op_check(q.rank() == 3, "q must be [n, heads, head_dim], got {}", q.str());
  check_cache(k);
  check_cache(v);
  op_check(k == v, "k cache {} and v cache {} differ", k.str(), v.str());
  op_check(q.dims[2] == k.dims[2], "head_dim of q ({}) and cache ({}) differ", dim_str(q.dims[2]),
           dim_str(k.dims[2]));
  op_check(q.dims[1].is_static() && q.dims[1].value % k.dims[1].value == 0,
           "heads ({}) must be a multiple of kv_heads ({})", dim_str(q.dims[1]), dim_str(k.dims[1]));
  check_positions(c, 3, q.dims[0]);
  auto scale = c.op.attrs.get_float("scale");
  op_check(scale.has_value(), "needs float attribute 'scale'");
  return q;
}

void register_attention_ops(std::vector<OpDef>& d) {
  d.push_back({"rope", "rotary position embedding over the first n_dims of each head (norm: adjacent pairs, "
               "neox: halves)", 2, 2, false, false, infer_rope});
  d.push_back({"kv_write", "writes rows of x into the cache at the given positions", 3, 3, true, false,
               infer_kv_write});
  d.push_back({"attention", "causal grouped-query attention of q over the KV cache", 4, 4, false, false,
               infer_attention});
}

}  // namespace nibble
