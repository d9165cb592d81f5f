// CpuExecutor on small hand-built plans: results, KV-cache plumbing, chunking, batch kernels,
// profiles, every load-time and call-time error, and no allocation per forward().
#include "runtime/cpu/executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>

#include "runtime/cpu/builtin_kernels.h"
#include "support/error.h"
#include "support/fp16.h"
#include "tests/unit/runtime_cpu/alloc_counter.h"
#include "tests/unit/runtime_cpu/test_util.h"

namespace nibble::rt {
namespace {

using testing::HasSubstr;

// A stand-in for a JIT get_rows: bufs table f32 [V, D], ids i32 [n], out f32 [n, D]; ints D.
void test_embed(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  const float* table = static_cast<const float*>(a->bufs[0]);
  const int32_t* ids = static_cast<const int32_t*>(a->bufs[1]);
  float* out = static_cast<float*>(a->bufs[2]);
  const int64_t D = a->ints[0];
  for (int64_t t = tb; t < te; ++t) std::memcpy(out + t * D, table + ids[t] * D, size_t(D) * 4);
}

std::atomic<int> g_batch_calls{0};
void test_embed_batch(const NibbleKernelArgs* a, int64_t tb, int64_t te) {
  g_batch_calls.fetch_add(1);
  test_embed(a, tb, te);
}

NibbleKernelFn jit(const std::string& s) {
  if (s == "test_embed") return test_embed;
  if (s == "test_embed_batch") return test_embed_batch;
  return nullptr;
}

BufRef arena(uint64_t off) { return {BufKind::Arena, 0, off}; }
BufRef weight(uint32_t i) { return {BufKind::Weight, i, 0}; }

// embed -> rms_norm(scale) -> add(norm, embed) = logits [n, D] (n_vocab = D).
struct NormPlan {
  static constexpr int64_t D = 24, V = D, M = 4;  // the vocabulary is the table's rows
  std::vector<float> table = test::random_floats(V * D, 1), scale = test::random_floats(D, 2, 0.5f, 1.5f);
  CpuPlan plan;
  NormPlan() {
    const uint64_t act = M * D * 4;
    plan.weights = {{"table", table.data(), table.size() * 4}, {"scale", scale.data(), scale.size() * 4}};
    plan.arena_bytes = 3 * act;
    plan.max_tokens = M;
    plan.n_vocab = D;
    plan.n_ctx = 32;
    plan.steps.push_back({"test_embed", "", 0, {weight(0), {BufKind::Tokens, 0, 0}, arena(0)}, {D}, {}, 0, 1, "embedding"});
    plan.steps.push_back({"rms_norm_f32", "", 0, {arena(0), weight(1), arena(act)}, {D}, {1e-5f}, 0, 1, "rms_norm"});
    plan.steps.push_back({"add_f32", "", 0, {arena(act), arena(0), arena(2 * act)}, {D, 0}, {}, 0, 1, "add"});
    plan.logits = arena(2 * act);
  }
  std::vector<double> expected(const std::vector<int32_t>& toks) const {
    std::vector<double> out;
    for (int32_t t : toks) {
      const float* x = table.data() + t * D;
      double ss = 0;
      for (int64_t i = 0; i < D; ++i) ss += double(x[i]) * x[i];
      const float r = 1.0f / std::sqrt(float(ss / D) + 1e-5f);
      for (int64_t i = 0; i < D; ++i) out.push_back((x[i] * r) * scale[i] + x[i]);
    }
    return out;
  }
};

TEST(CpuExecutor, RunsBuiltinsAndJitKernels) {
  NormPlan p;
  for (int threads : {1, 3}) {
    CpuExecutor ex(p.plan, jit, threads);
    EXPECT_EQ(ex.threads(), threads);
    const std::vector<int32_t> toks = {3, 10, 0}, pos = {0, 1, 2};
    std::span<const float> logits = ex.forward(toks.data(), pos.data(), 3);
    ASSERT_EQ(logits.size(), size_t(3 * NormPlan::D));
    EXPECT_LE(test::normalized_error(std::vector<float>(logits.begin(), logits.end()), p.expected(toks)), 1e-6);
    logits = ex.forward(toks.data() + 1, pos.data(), 1);  // fewer tokens later
    EXPECT_LE(test::normalized_error(std::vector<float>(logits.begin(), logits.end()), p.expected({10})), 1e-6);
    EXPECT_TRUE(ex.forward(toks.data(), pos.data(), 0).empty());
  }
}

TEST(CpuExecutor, ForwardDoesNotAllocate) {
  NormPlan p;
  CpuExecutor ex(p.plan, jit, 2);
  ex.set_profiling(true);
  const std::vector<int32_t> toks = {1, 2, 3, 4}, pos = {0, 1, 2, 3};
  ex.forward(toks.data(), pos.data(), 4);  // warm-up
  const int64_t before = test::g_allocations.load();
  for (int i = 0; i < 50; ++i) {
    ex.forward(toks.data(), pos.data(), 1 + i % 4);
    ex.forward_chunked(toks.data(), pos.data(), 4);
  }
  EXPECT_EQ(test::g_allocations.load(), before);
}

TEST(CpuExecutor, ChunksLongInputs) {
  NormPlan p;
  CpuExecutor ex(p.plan, jit, 2);
  std::vector<int32_t> toks, pos;
  for (int i = 0; i < 10; ++i) toks.push_back((i * 7) % 24), pos.push_back(i);
  std::vector<float> all;
  std::vector<int64_t> firsts;
  std::span<const float> last = ex.forward_chunked(toks.data(), pos.data(), 10,
                                                   [&](int64_t first, int64_t n, std::span<const float> l) {
                                                     firsts.push_back(first);
                                                     EXPECT_EQ(l.size(), size_t(n * NormPlan::D));
                                                     all.insert(all.end(), l.begin(), l.end());
                                                   });
  EXPECT_EQ(firsts, (std::vector<int64_t>{0, 4, 8}));
  EXPECT_LE(test::normalized_error(all, p.expected(toks)), 1e-6);
  EXPECT_LE(test::normalized_error(std::vector<float>(last.begin(), last.end()), p.expected({toks.back()})), 1e-6);
}

TEST(CpuExecutor, BatchKernelFromThreshold) {
  NormPlan p;
  p.plan.steps[0].batch_kernel = "test_embed_batch";
  p.plan.steps[0].batch_from_tokens = 3;
  CpuExecutor ex(p.plan, jit, 1);
  const std::vector<int32_t> toks = {1, 2, 3, 4}, pos = {0, 1, 2, 3};
  g_batch_calls = 0;
  ex.forward(toks.data(), pos.data(), 2);
  EXPECT_EQ(g_batch_calls.load(), 0);
  std::span<const float> l = ex.forward(toks.data(), pos.data(), 3);
  EXPECT_EQ(g_batch_calls.load(), 1);
  EXPECT_LE(test::normalized_error(std::vector<float>(l.begin(), l.end()), p.expected({1, 2, 3})), 1e-6);
}

TEST(CpuExecutor, Profile) {
  NormPlan p;
  CpuExecutor ex(p.plan, jit, 2);
  const std::vector<int32_t> toks = {1}, pos = {0};
  ex.forward(toks.data(), pos.data(), 1);
  EXPECT_TRUE(ex.profile().empty());  // off by default
  ex.set_profiling(true);
  for (int i = 0; i < 5; ++i) ex.forward(toks.data(), pos.data(), 1);
  std::vector<StepProfile> prof = ex.profile();
  ASSERT_EQ(prof.size(), 3u);
  for (const StepProfile& s : prof) EXPECT_EQ(s.calls, 5);
  for (size_t i = 1; i < prof.size(); ++i) EXPECT_GE(prof[i - 1].seconds, prof[i].seconds);
  const std::string report = ex.profile_report();
  EXPECT_THAT(report, HasSubstr("rms_norm"));
  EXPECT_THAT(report, HasSubstr("embedding"));
  ex.clear_profile();
  EXPECT_TRUE(ex.profile().empty());
}

// embed -> kv_write k, v (f16 states) -> attention (Pos) = logits: exercises states, Pos, scratch.
struct AttnPlan {
  static constexpr int64_t H = 2, d = 8, D = H * d, V = D, M = 4, n_ctx = 16;
  std::vector<float> table = test::random_floats(V * D, 3);
  CpuPlan plan;
  AttnPlan() {
    const uint64_t act = M * D * 4;
    plan.weights = {{"table", table.data(), table.size() * 4}};
    plan.states = {{"k", n_ctx * D * 2}, {"v", n_ctx * D * 2}};
    plan.arena_bytes = 2 * act;
    plan.scratch_bytes = attention_scratch_bytes(n_ctx, d);
    plan.max_tokens = M;
    plan.n_vocab = D;
    plan.n_ctx = n_ctx;
    const BufRef pos{BufKind::Pos, 0, 0};
    plan.steps.push_back({"test_embed", "", 0, {weight(0), {BufKind::Tokens, 0, 0}, arena(0)}, {D}, {}, 0, 1, "embedding"});
    plan.steps.push_back({"kv_write_f16", "", 0, {arena(0), pos, {BufKind::State, 0, 0}}, {D, n_ctx}, {}, 0, 1, "kv_write k"});
    plan.steps.push_back({"kv_write_f16", "", 0, {arena(0), pos, {BufKind::State, 1, 0}}, {D, n_ctx}, {}, 0, 1, "kv_write v"});
    plan.steps.push_back({"attention_f16",
                          "",
                          0,
                          {arena(0), {BufKind::State, 0, 0}, {BufKind::State, 1, 0}, pos, arena(act)},
                          {H, H, d, n_ctx},
                          {0.35f},
                          0,
                          H,
                          "attention"});
    plan.logits = arena(act);
  }
};

TEST(CpuExecutor, KvCacheAcrossCallsAndReset) {
  AttnPlan p;
  CpuExecutor ex(p.plan, jit, 3);
  const std::vector<int32_t> toks = {3, 1, 4, 1, 5}, pos = {0, 1, 2, 3, 4};
  std::span<const float> l = ex.forward(toks.data(), pos.data(), 4);
  const std::vector<float> batched(l.end() - AttnPlan::D, l.end());  // token 3 at position 3
  ex.reset();
  for (auto b : ex.state(0)) ASSERT_EQ(b, std::byte{0});
  std::vector<float> single;
  for (int i = 0; i < 4; ++i) {  // decode one token at a time: the cache carries the context
    l = ex.forward(toks.data() + i, pos.data() + i, 1);
    single.assign(l.begin(), l.end());
  }
  EXPECT_EQ(single, batched);
  // A fresh sequence without reset would see stale rows past its positions only; a repeat of
  // position 0 alone attends to one row: the output is v(token) itself, rounded through f16.
  ex.reset();
  l = ex.forward(toks.data() + 2, pos.data(), 1);
  for (int64_t j = 0; j < AttnPlan::D; ++j) EXPECT_EQ(l[j], round_to_fp16(p.table[4 * AttnPlan::D + j]));
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(CpuExecutor, LoadErrors) {
  {
    NormPlan p;
    p.plan.steps[1].kernel = "no_such_kernel_q4";
    EXPECT_THAT(error_of([&] { CpuExecutor(p.plan, jit, 1); }), HasSubstr("no_such_kernel_q4"));
  }
  {
    NormPlan p;  // the JIT kernel without a resolver
    EXPECT_THAT(error_of([&] { CpuExecutor(p.plan, nullptr, 1); }), HasSubstr("test_embed"));
  }
  {
    NormPlan p;  // an output past the arena
    p.plan.steps[1].bufs[2].offset = p.plan.arena_bytes + 64;
    EXPECT_THAT(error_of([&] { CpuExecutor(p.plan, jit, 1); }), HasSubstr("outside"));
  }
  {
    NormPlan p;  // starts inside, but a built-in's rows run past the end
    p.plan.steps[2].bufs[2].offset = p.plan.arena_bytes - 8;
    EXPECT_THAT(error_of([&] { CpuExecutor(p.plan, jit, 1); }), HasSubstr("outside"));
  }
  {
    NormPlan p;
    p.plan.steps[1].bufs[1] = {BufKind::Weight, 7, 0};
    EXPECT_THAT(error_of([&] { CpuExecutor(p.plan, jit, 1); }), HasSubstr("weight index 7"));
  }
  {
    NormPlan p;  // the scale of rms_norm may be null, its input may not
    p.plan.steps[1].bufs[1] = {BufKind::Null, 0, 0};
    EXPECT_NO_THROW(CpuExecutor(p.plan, jit, 1));
    p.plan.steps[1].bufs[0] = {BufKind::Null, 0, 0};
    EXPECT_THAT(error_of([&] { CpuExecutor(p.plan, jit, 1); }), HasSubstr("null"));
  }
  {
    NormPlan p;  // a built-in missing its eps
    p.plan.steps[1].floats.clear();
    EXPECT_THAT(error_of([&] { CpuExecutor(p.plan, jit, 1); }), HasSubstr("rms_norm_f32"));
  }
  {
    NormPlan p;
    p.plan.logits.offset = p.plan.arena_bytes - 4;
    EXPECT_THAT(error_of([&] { CpuExecutor(p.plan, jit, 1); }), HasSubstr("logits"));
  }
  {
    NormPlan p;
    p.plan.max_tokens = 0;
    EXPECT_THROW(CpuExecutor(p.plan, jit, 1), Error);
  }
  {
    AttnPlan p;
    p.plan.scratch_bytes = 16;
    EXPECT_THAT(error_of([&] { CpuExecutor(p.plan, jit, 1); }), HasSubstr("scratch"));
  }
  {
    AttnPlan p;  // positions the plan admits would run past the cache
    p.plan.n_ctx = 17;
    EXPECT_THAT(error_of([&] { CpuExecutor(p.plan, jit, 1); }), HasSubstr("cache"));
  }
  {
    AttnPlan p;
    p.plan.steps[1].bufs[2] = {BufKind::State, 5, 0};
    EXPECT_THAT(error_of([&] { CpuExecutor(p.plan, jit, 1); }), HasSubstr("state index 5"));
  }
}

TEST(CpuExecutor, CallErrors) {
  NormPlan p;
  CpuExecutor ex(p.plan, jit, 2);
  std::vector<int32_t> toks = {1, 2, 3, 4, 5}, pos = {0, 1, 2, 3, 4};
  EXPECT_THAT(error_of([&] { ex.forward(toks.data(), pos.data(), 5); }), HasSubstr("max_tokens = 4"));
  toks[1] = 24;
  EXPECT_THAT(error_of([&] { ex.forward(toks.data(), pos.data(), 2); }), HasSubstr("token id 24"));
  toks[1] = -3;
  EXPECT_THAT(error_of([&] { ex.forward(toks.data(), pos.data(), 2); }), HasSubstr("token id -3"));
  toks[1] = 2;
  pos[2] = 32;
  EXPECT_THAT(error_of([&] { ex.forward(toks.data(), pos.data(), 3); }), HasSubstr("position 32"));
  pos[2] = 2;
  EXPECT_NO_THROW(ex.forward(toks.data(), pos.data(), 4));  // still usable after errors
}

}  // namespace
}  // namespace nibble::rt
