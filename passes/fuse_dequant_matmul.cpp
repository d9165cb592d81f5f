// fuse-dequant-matmul: matmul(a, dequant(w)) {transpose_b} -> qmatmul(quantize(a), w), so weights
// stay packed and every weight product reaches codegen as one op kind.
//
// Rules (only when transpose_b is set and w is a 2-D `weight`; anything else is left alone):
//   w block-quantized:   matmul(a, dequant(w))  -> qmatmul(quantize(a) : vec_dot_type(w), w)
//   w f16 / bf16:        matmul(a, dequant(w)) or matmul(a, w) -> qmatmul(quantize(a) : f16 / bf16, w)
//   w f32:               matmul(a, w)           -> qmatmul(a, w)
// ggml's CPU matmul converts activations to vec_dot_type(w) the same way (f16 for f16 weights too),
// so the numerics match llama.cpp's. Vulkan runs an f16 / bf16 quantize as an alias of its f32 input.
// The new ops take the matmul's place (and its name); dequants left without users are erased.
// Runs on every target, "ref" included: the reference executor runs qmatmul on quantized
// activations with ggml's integer dot products, the oracle for the CPU backend's quantized path.
#include <unordered_set>

#include "ir/builder.h"
#include "passes/pass.h"

namespace nibble {

namespace {

bool is_op(const Value* v, const char* name) { return v && v->def && v->def->op_name() == name; }

// The weight a matmul's b reads, or null when the pattern does not apply.
Op* matmul_weight(const Op& mm, Op*& dequant) {
  dequant = nullptr;
  Value* b = mm.operand(1);
  if (is_op(b, "dequant")) {
    dequant = b->def;
    b = dequant->operand(0);
  }
  if (!is_op(b, "weight") || b->type.rank() != 2) return nullptr;
  DType t = b->type.dtype;
  // A bare (non-dequantized) weight can only be a float matrix; quantized ones need the dequant.
  if (!dequant && is_quantized(t)) return nullptr;
  if (!is_quantized(t) && t != DType::F32 && t != DType::F16 && t != DType::BF16) return nullptr;
  return b->def;
}

class FuseDequantMatmul : public Pass {
 public:
  void run(Module& m, const PassOptions&) override {
    for (auto& f : m.functions) {
      Builder b(m, *f);
      std::unordered_set<Op*> dequants;
      for (auto it = f->ops.begin(); it != f->ops.end();) {
        Op* mm = it->get();
        Op* dq = nullptr;
        Op* w = mm->op_name() == "matmul" && mm->attrs.bool_or("transpose_b", false) ? matmul_weight(*mm, dq) : nullptr;
        if (!w) {
          ++it;
          continue;
        }
        b.set_insertion_point(it);
        Value* a = mm->operand(0);
        const DTypeInfo& info = dtype_info(w->type.dtype);
        if (info.vec_dot_type != DType::F32) {
          // Activations in the weight's dot-product format, as ggml's CPU matmul converts src1.
          Op* q = b.create_typed("quantize", {a}, TensorType{info.vec_dot_type, a->type.dims});
          q->loc = mm->loc;
          a = q;
        }
        Op* qm = b.create("qmatmul", {a, w}, {}, mm->name);
        qm->loc = mm->loc;
        f->replace_all_uses(mm, qm);
        if (dq) dequants.insert(dq);
        it = f->ops.erase(it);
      }
      // Drop the dequants nothing reads any more (embedding reads the weight itself).
      for (auto it = f->ops.begin(); it != f->ops.end();) {
        if (dequants.count(it->get()) && f->use_count(it->get()) == 0) {
          it = f->ops.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
};

}  // namespace

extern const PassInfo kFuseDequantMatmulPass = {
    "fuse-dequant-matmul", "matmul(a, dequant(w)) -> qmatmul(quantize(a), w): weights stay packed",
    [] { return std::make_unique<FuseDequantMatmul>(); }};

}  // namespace nibble
