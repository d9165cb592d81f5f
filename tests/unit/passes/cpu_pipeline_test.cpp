// The cpu pipeline on real models: the IR it leaves obeys the pass contract (docs/cpu-backend.md),
// verifies, and its buffer plan never overlaps two live buffers.
#include <cmath>
#include <cstdio>
#include <map>
#include <unordered_map>

#include <gtest/gtest.h>

#include "frontends/gguf/gguf.h"
#include "frontends/llama/llama_builder.h"
#include "ir/verifier.h"
#include "passes/pass.h"
#include "passes/pipeline.h"
#include "tests/unit/e2e/reference_oracle.h"

namespace nibble::testing {
namespace {

std::unique_ptr<Module> build(const std::string& model) {
  ModelBuildOptions o;
  o.n_ctx = 256;
  return build_llama_module(gguf::File::open(shared_path("models/" + model)), o);
}

void run_pipeline(Module& m, const std::string& target, int64_t max_tokens = 512) {
  PassOptions po;
  po.target = target;
  po.max_tokens = max_tokens;
  PassManager pm(po);
  pm.add_pipeline(default_pipeline(target));
  pm.run(m);
}

// --- Buffer plan -------------------------------------------------------------------------------

bool is_alias(const Op& op) {
  const std::string& n = op.op_name();
  return n == "reshape" || n == "kv_write" || n == "weight" || n == "state";
}

struct Planned {
  const Op* op;
  int64_t offset, bytes, begin, end;
};

// Recomputes sizes and live intervals from the IR (independently of the pass) and returns the
// buffers with the offsets the pass chose.
std::vector<Planned> planned_buffers(const Function& f, int64_t max_tokens) {
  std::vector<Planned> bufs;
  std::unordered_map<const Value*, size_t> owner;  // value (or alias) -> its buffer
  int64_t i = 0;
  auto touch = [&](const Value* v, int64_t at) {
    auto it = owner.find(v);
    if (it != owner.end()) bufs[it->second].end = std::max(bufs[it->second].end, at);
  };
  for (const auto& op : f.ops) {
    for (const Value* u : op->operands) touch(u, i);
    if (op->op_name() == "reshape") {
      auto it = owner.find(op->operand(0));
      if (it != owner.end()) owner[op.get()] = it->second;
      EXPECT_FALSE(op->attrs.has("arena_offset")) << "reshape at op " << i;
    } else if (is_alias(*op)) {
      EXPECT_FALSE(op->attrs.has("arena_offset")) << op->op_name() << " at op " << i;
    } else {
      auto off = op->attrs.get_int("arena_offset");
      EXPECT_TRUE(off.has_value()) << op->op_name() << " at op " << i << " has no arena_offset";
      int64_t elems = 1;
      for (int d = 0; d + 1 < op->type.rank(); ++d)
        elems *= op->type.dims[d].is_static() ? op->type.dims[d].value : max_tokens;
      const Dim& last = op->type.dims.back();
      int64_t bytes = elems * row_bytes(op->type.dtype, last.is_static() ? last.value : max_tokens);
      owner[op.get()] = bufs.size();
      bufs.push_back({op.get(), off.value_or(-1), bytes, i, i});
    }
    ++i;
  }
  for (const Value* r : f.results) touch(r, i);
  return bufs;
}

struct PlanStats {
  int64_t arena = 0, peak = 0;
};

PlanStats check_plan(const Module& m, int64_t max_tokens) {
  EXPECT_EQ(m.attrs.get_int("max_tokens"), max_tokens);
  const int64_t arena = m.attrs.int_or("arena_bytes", -1);
  const int64_t peak = m.attrs.int_or("peak_activation_bytes", -1);
  EXPECT_GT(arena, 0);
  EXPECT_LE(peak, arena);
  for (const auto& f : m.functions) {
    std::vector<Planned> bufs = planned_buffers(*f, max_tokens);
    int64_t live_max = 0;
    for (size_t a = 0; a < bufs.size(); ++a) {
      const Planned& x = bufs[a];
      EXPECT_EQ(x.offset % 64, 0) << x.op->op_name();
      EXPECT_GE(x.offset, 0);
      EXPECT_LE(x.offset + x.bytes, arena) << x.op->op_name() << " runs past the arena";
      for (size_t b = a + 1; b < bufs.size(); ++b) {
        const Planned& y = bufs[b];
        bool live_together = x.begin <= y.end && y.begin <= x.end;
        bool overlap = x.offset < y.offset + y.bytes && y.offset < x.offset + x.bytes;
        EXPECT_FALSE(live_together && overlap)
            << x.op->op_name() << " [" << x.begin << ", " << x.end << "] @" << x.offset << "+" << x.bytes << " and "
            << y.op->op_name() << " [" << y.begin << ", " << y.end << "] @" << y.offset << "+" << y.bytes;
      }
    }
    // The peak the pass reports is the most (64-byte rounded) bytes live at once.
    for (int64_t t = 0; t <= int64_t(f->ops.size()); ++t) {
      int64_t live = 0;
      for (const Planned& x : bufs)
        if (x.begin <= t && t <= x.end) live += (x.bytes + 63) / 64 * 64;
      live_max = std::max(live_max, live);
    }
    EXPECT_EQ(live_max, peak);
  }
  return {arena, peak};
}

// --- Pass contract -----------------------------------------------------------------------------

void check_contract(const Module& m) {
  for (const auto& f : m.functions)
    for (const auto& op : f->ops) {
      const std::string& n = op->op_name();
      EXPECT_NE(n, "matmul") << "every weight product becomes a qmatmul";
      if (n == "dequant") {
        ADD_FAILURE() << "a dequant survived";
      } else if (n == "qmatmul") {
        for (const char* k : {"rows_per_task", "k_unroll", "vector_bits", "m_tile"})
          EXPECT_TRUE(op->attrs.get_int(k).has_value()) << k;
        EXPECT_EQ(op->attrs.get_string("path"), "gemv");
        EXPECT_EQ(op->attrs.get_int("gemm_from"), 4);
        const Value* w = op->operand(1);
        ASSERT_TRUE(w->def && w->def->op_name() == "weight");
        const WeightDecl* d = m.find_weight(*w->def->attrs.get_symbol("ref"));
        auto layout = d->attrs.get_string("layout");
        ASSERT_TRUE(layout.has_value()) << d->name;
        if (*layout == "rows_x4") {
          EXPECT_EQ(op->attrs.int_or("rows_per_task", 0) % 4, 0);
        }
        const Value* a = op->operand(0);
        const DType act = dtype_info(w->type.dtype).vec_dot_type;  // f16 for f16 weights too, as ggml
        EXPECT_EQ(a->type.dtype, act) << d->name;
      } else if (n == "mul") {
        ADD_FAILURE() << "a norm scale was not fused";
      } else if (n == "add") {
        ADD_FAILURE() << "a residual or bias add was not fused";
      }
    }
}

TEST(CpuPipeline, Stories260KPlanAndContract) {
  auto m = build("stories260K.gguf");
  run_pipeline(*m, "cpu");
  EXPECT_TRUE(verify(*m).empty());
  check_contract(*m);
  PlanStats s = check_plan(*m, 512);
  std::printf("stories260K max_tokens 512: peak_activation_bytes %lld, arena_bytes %lld\n", (long long)s.peak,
              (long long)s.arena);
}

TEST(CpuPipeline, PlanInvariantAcrossModelsAndTokenCounts) {
  for (const char* model : {"stories260K-q4_0.gguf", "stories260K-q4_k_m.gguf", "synth-256-q4_k_m.gguf",
                            "synth-256-q8_0.gguf", "synth-qwen2-q4_k_m.gguf"}) {
    for (int64_t max_tokens : {1, 7, 512}) {
      SCOPED_TRACE(std::string(model) + " max_tokens " + std::to_string(max_tokens));
      auto m = build(model);
      run_pipeline(*m, "cpu", max_tokens);
      EXPECT_TRUE(verify(*m).empty());
      check_contract(*m);
      PlanStats s = check_plan(*m, max_tokens);
      if (max_tokens == 512)
        std::printf("%s max_tokens 512: peak_activation_bytes %lld, arena_bytes %lld\n", model, (long long)s.peak,
                    (long long)s.arena);
    }
  }
}

// qwen2's tied output shares token_embd with the embedding: GGUF order, fused without a dequant.
TEST(CpuPipeline, TiedEmbeddingKeepsRows) {
  auto m = build("synth-qwen2-q4_k_m.gguf");
  run_pipeline(*m, "cpu");
  EXPECT_EQ(m->find_weight("token_embd.weight")->attrs.get_string("layout"), "rows");
  EXPECT_EQ(m->find_weight("blk.0.attn_q.weight")->attrs.get_string("layout"), "rows_x4");
  int biased = 0;
  for (const auto& op : m->functions[0]->ops) biased += op->attrs.bool_or("bias", false);
  EXPECT_EQ(biased, 9);  // q, k, v in 3 layers
}

}  // namespace
}  // namespace nibble::testing
