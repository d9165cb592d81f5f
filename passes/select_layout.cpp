// select-layout: picks the memory layout codegen repacks each qmatmul weight into (once, at load).
//
// Heuristic, per weight declaration read as the `w` operand of at least one qmatmul:
//   target cpu, block-quantized, N % 4 == 0, and read by qmatmul only -> "rows_x4": the blocks of
//       4 consecutive rows interleaved, so one sequential stream feeds 4 output rows and the
//       activation block is loaded once per 4 dot products.
//   otherwise -> "rows" (GGUF order):
//     - f32/f16/bf16 weights: plain vector loads already stream well, nothing to gain;
//     - N % 4 != 0: no whole groups of 4;
//     - also read by another op (embedding on a tied output table as in qwen2, a dequant, ...):
//       those readers need GGUF order and the bytes exist once;
//     - target vulkan (and ref): "rows" for now.
// Weights no qmatmul reads as `w` (norm scales, biases, embedding-only tables) get no layout.
#include <map>

#include "passes/pass.h"

namespace nibble {

namespace {

struct Readers {
  bool qmatmul_w = false;  // read as a qmatmul's packed weight
  bool other = false;      // read by anything else (embedding, bias operand, dequant, ...)
};

class SelectLayout : public Pass {
 public:
  void run(Module& m, const PassOptions& opts) override {
    std::map<std::string, Readers> readers;
    for (auto& f : m.functions) {
      for (auto& op : f->ops)
        for (int i = 0; i < op->num_operands(); ++i) {
          const Value* v = op->operand(i);
          if (!v->def || v->def->op_name() != "weight") continue;
          Readers& r = readers[*v->def->attrs.get_symbol("ref")];
          (op->op_name() == "qmatmul" && i == 1 ? r.qmatmul_w : r.other) = true;
        }
      // A weight returned as a result is read by the caller in GGUF order.
      for (const Value* v : f->results)
        if (v->def && v->def->op_name() == "weight") readers[*v->def->attrs.get_symbol("ref")].other = true;
    }
    for (WeightDecl& w : m.weights) {
      auto it = readers.find(w.name);
      if (it == readers.end() || !it->second.qmatmul_w) continue;
      bool x4 = opts.target == "cpu" && is_quantized(w.type.dtype) && !it->second.other && w.type.rank() == 2 &&
                w.type.dims[0].value % 4 == 0;
      w.attrs.set("layout", std::string(x4 ? "rows_x4" : "rows"));
    }
  }
};

}  // namespace

extern const PassInfo kSelectLayoutPass = {
    "select-layout", "chooses each qmatmul weight's packed layout for the target (rows, rows_x4)",
    [] { return std::make_unique<SelectLayout>(); }};

}  // namespace nibble
