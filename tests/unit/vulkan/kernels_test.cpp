// The differential harness: every kernel kind x weight format x shape, on lavapipe-sized problems
// (odd sizes, not multiples of the tiles; 1 and several tokens; GEMV and GEMM paths), against the
// reference executor running the same IR, by normalized error with a threshold per kind/format.
// Arenas are poisoned with NaN before every call, so an element a kernel fails to write fails the
// comparison; validation messages fail the test (VulkanTest). Every feature variant is forced.
#include <map>

#include "vk_test_util.h"

namespace nibble::vk::testing {
namespace {

struct Check {
  std::string what;
  double tol;  // normalized error; 0: exact (i32)
};

// Runs the graph on the GPU and on the reference executor call by call; compares every result.
class Differential {
 public:
  Differential(Graph& g, std::vector<Check> checks, std::shared_ptr<Context> ctx, const FeatureOverrides& fo,
               const VulkanCompileOptions& co = {})
      : g_(g), checks_(std::move(checks)), interp_(*g.m) {
    VulkanOptions o;
    o.context = std::move(ctx);
    o.features = fo;
    o.poison = true;
    o.compile = co;
    model_ = VulkanModel::create(*g.m, o);
  }

  void call(const std::vector<int32_t>& tokens, const std::vector<int32_t>& pos, const std::string& tag) {
    model_->forward(tokens, pos);
    RefTensor t, p;
    t.dtype = p.dtype = DType::I32;
    t.shape = p.shape = {int64_t(tokens.size())};
    t.i = tokens;
    p.i = pos;
    std::vector<RefTensor> want = interp_.run({t, p});
    ASSERT_EQ(want.size(), checks_.size());
    for (size_t i = 0; i < want.size(); ++i) {
      std::vector<uint32_t> got = model_->output_words(i);
      const Check& c = checks_[i];
      if (want[i].dtype == DType::I32) {
        std::vector<int32_t> gi(got.size());
        std::memcpy(gi.data(), got.data(), got.size() * 4);
        EXPECT_EQ(gi, want[i].i) << c.what << " (" << tag << ")";
      } else {
        double err = normalized_error(as_floats(got), want[i].to_f32());
        EXPECT_LE(err, c.tol) << c.what << " (" << tag << ", " << model_->compiled().features.str() << ")";
      }
    }
  }

  VulkanModel& model() { return *model_; }

 private:
  Graph& g_;
  std::vector<Check> checks_;
  Interpreter interp_;
  std::unique_ptr<VulkanModel> model_;
};

std::vector<int32_t> random_ids(std::mt19937& rng, size_t n, int32_t vocab) {
  std::vector<int32_t> v(n);
  for (auto& x : v) x = int32_t(rng() % uint32_t(vocab));
  return v;
}

// ---- qmatmul / matmul: every format, GEMV (1 and 3 tokens) and GEMM (7 tokens), with epilogues.

struct MatCase {
  DType t;
  int64_t N, K;
  bool bias = false, residual = false;
  bool unfused = false;  // matmul(x, dequant(w)) {transpose_b}, as the frontend writes it
};

// Normalized-error thresholds per format on the f32-activation path: the weights decode exactly as
// the reference's, only the f32 (vs double) accumulation order differs.
double matmul_tol(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: return 2e-6;
    default: return 4e-6;
  }
}

std::vector<MatCase> matmul_cases() {
  return {
      {DType::F32, 37, 100},          {DType::F16, 37, 172, false, true}, {DType::BF16, 33, 96, true},
      {DType::Q4_0, 37, 96, true},    {DType::Q4_1, 35, 64},              {DType::Q5_0, 33, 96},
      {DType::Q5_1, 31, 64, false, true}, {DType::Q8_0, 37, 160},         {DType::Q2_K, 19, 256},
      {DType::Q3_K, 21, 512},         {DType::Q4_K, 23, 256, true, true}, {DType::Q5_K, 17, 512},
      {DType::Q6_K, 29, 256},         {DType::Q4_K, 9, 256, false, false, true},
      {DType::F16, 13, 40, false, false, true},
  };
}

Graph build_matmul_graph(std::vector<Check>& checks, int64_t vocab) {
  Graph g("matmuls");
  int i = 0;
  for (const MatCase& c : matmul_cases()) {
    std::string n = fmt::format("{}_{}", dtype_name(c.t), i++);
    Value* x = g.input("x_" + n, vocab, c.K);
    Value* w = g.weight("w_" + n, c.t, c.N, c.K, 0.5f);
    Value* y;
    if (c.unfused) {
      Attrs a;
      a.set("transpose_b", true);
      y = g.b->create("matmul", {x, c.t == DType::F32 ? w : g.b->dequant(w)}, a);
    } else {
      std::vector<Value*> ops = {x, w};
      Attrs a;
      if (c.bias) {
        ops.push_back(g.vector("b_" + n, c.N));
        a.set("bias", true);
      }
      if (c.residual) {
        ops.push_back(g.input("r_" + n, vocab, c.N));
        a.set("residual", true);
      }
      y = g.b->create("qmatmul", ops, a);
    }
    g.result(y);
    checks.push_back({fmt::format("{} {}x{}{}{}{}", dtype_name(c.t), c.N, c.K, c.bias ? " +bias" : "",
                                  c.residual ? " +residual" : "", c.unfused ? " (matmul+dequant)" : ""),
                      matmul_tol(c.t)});
  }
  return g;
}

class MatmulDiff : public VulkanParamTest<Variant> {};

TEST_P(MatmulDiff, EveryFormatGemvAndGemm) {
  std::vector<Check> checks;
  Graph g = build_matmul_graph(checks, 16);
  Differential d(g, checks, ctx_, GetParam().o, compile_options(GetParam()));
  std::mt19937 rng(7);
  for (size_t n : {1, 3, 7, 20}) {
    std::vector<int32_t> ids = random_ids(rng, n, 16);
    d.call(ids, iota_pos(0, n), fmt::format("{} tokens", n));
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, MatmulDiff, ::testing::ValuesIn(variants()),
                         [](const ::testing::TestParamInfo<Variant>& i) { return std::string(i.param.name); });

// ---- qmatmul(quantize(x), w) as the vulkan pipeline writes it. With quantized activations on, the
// legacy formats run integer dot products on GPU-quantized q8_0/q8_1 activations: the reference
// executor's numerics on the same IR (ggml's vec_dot), up to the order of the f32 block sums. Off,
// or for q8_K (K-quants, always aliased), the GPU uses f32 activations: the difference is the
// activations' quantization error.
const double kActQuantTol = 3e-2;

struct Q8Case {
  DType w;
  int64_t N, K;
  bool bias = false, residual = false;
};

Graph build_quantized_graph(std::vector<Check>& checks, int64_t vocab, bool gpu_quantize, bool loose) {
  Graph g("quantized");
  int i = 0;
  for (const Q8Case& c : std::vector<Q8Case>{{DType::Q4_0, 37, 96, true},
                                             {DType::Q4_1, 35, 64},
                                             {DType::Q5_0, 33, 160, false, true},
                                             {DType::Q5_1, 31, 64, true, true},
                                             {DType::Q8_0, 37, 96},
                                             {DType::Q4_K, 19, 256}}) {
    std::string n = fmt::format("{}_{}", dtype_name(c.w), i++);
    Value* x = g.input("x_" + n, vocab, c.K);
    Value* q = g.b->create_typed("quantize", {x}, {dtype_info(c.w).vec_dot_type, x->type.dims});
    std::vector<Value*> ops = {q, g.weight("w_" + n, c.w, c.N, c.K, 0.5f)};
    Attrs a;
    if (c.bias) {
      ops.push_back(g.vector("b_" + n, c.N));
      a.set("bias", true);
    }
    if (c.residual) {
      ops.push_back(g.input("r_" + n, vocab, c.N));
      a.set("residual", true);
    }
    g.result(g.b->create("qmatmul", ops, a));
    const bool exact = gpu_quantize && !loose && q8_gemv_supported(c.w);
    checks.push_back({fmt::format("qmatmul(quantize(x): {}, {}) {}x{}", dtype_name(dtype_info(c.w).vec_dot_type),
                                  dtype_name(c.w), c.N, c.K),
                      exact ? 2e-6 : kActQuantTol});
  }
  return g;
}

struct Q8Variant {
  const char* name;
  bool gpu_quantize;
  bool int_dot;
  bool multi_token;
};

void PrintTo(const Q8Variant& v, std::ostream* os) { *os << v.name; }

class QuantizedActivations : public VulkanParamTest<Q8Variant> {};

TEST_P(QuantizedActivations, MatchTheReferenceOnTheSameIR) {
  const Q8Variant& v = GetParam();
  if (v.int_dot && !ctx_->info().int_dot) GTEST_SKIP() << "no integer dot product on this device";
  for (bool batch : {false, true}) {
    std::vector<Check> checks;
    Graph g = build_quantized_graph(checks, 16, v.gpu_quantize, batch && !v.multi_token);
    VulkanCompileOptions co;
    co.quantized_activations = v.gpu_quantize ? ActivationQuant::On : ActivationQuant::Off;
    co.gemm_from = 8;
    // The batch kernel: a GEMM on the f32 input (loose), or the q8 GEMV over tokens (exact).
    co.auto_tiles = false;
    co.batch = v.multi_token ? VulkanCompileOptions::Batch::MultiTokenGemv : VulkanCompileOptions::Batch::TiledGemm;
    FeatureOverrides fo;
    fo.int_dot = v.int_dot;
    Differential d(g, checks, ctx_, fo, co);
    if (v.gpu_quantize) {
      int q8_kernels = 0;
      for (const Kernel& k : d.model().compiled().plan.kernels) q8_kernels += k.name.find("gemv_q8_") == 0;
      EXPECT_EQ(q8_kernels, v.multi_token ? 10 : 5);  // (+ the multi-token batch variants)
      EXPECT_EQ(bool(d.model().compiled().plan.features & kFeatIntDot), v.int_dot);
    }
    std::mt19937 rng(3);
    for (size_t n : batch ? std::vector<size_t>{9} : std::vector<size_t>{1, 3, 5})
      d.call(random_ids(rng, n, 16), iota_pos(0, n), fmt::format("{} tokens", n));
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, QuantizedActivations,
                         ::testing::Values(Q8Variant{"gpu_quantize_int_dot", true, true, true},
                                           Q8Variant{"gpu_quantize_emulated_dot", true, false, false},
                                           Q8Variant{"f32_activations", false, false, false}),
                         [](const ::testing::TestParamInfo<Q8Variant>& i) { return std::string(i.param.name); });

// ---- Everything else: get_rows per format, norms, element-wise ops with broadcast, softmax,
// rope norm/neox, kv_write + attention (f16 and f32 caches), argmax, a standalone dequant.

Graph build_ops_graph(std::vector<Check>& checks, int64_t vocab, int64_t n_ctx, bool f32_cache) {
  Graph g("ops");
  Value* x = g.input("x", vocab, 96);
  Value* x2 = g.input("x2", vocab, 96);
  auto add = [&](Value* v, const std::string& what, double tol) {
    g.result(v);
    checks.push_back({what, tol});
  };
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                  DType::Q8_0, DType::Q8_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K,
                  DType::Q8_K}) {
    int64_t D = dtype_info(t).block_size == 1 ? 20 : dtype_info(t).block_size * 2;
    add(g.b->create("embedding", {g.weight(std::string("table_") + dtype_name(t), t, vocab, D), g.tokens}),
        std::string("embedding ") + dtype_name(t), 1e-7);
  }
  add(g.b->dequant(g.weight("dq", DType::Q4_K, 3, 256)), "dequant q4_k", 1e-7);
  Attrs eps;
  eps.set("eps", 1e-5);
  add(g.b->create("rms_norm", {x}, eps), "rms_norm", 2e-6);
  add(g.b->create("rms_norm", {x, g.vector("rs", 96)}, eps), "rms_norm + scale", 2e-6);
  add(g.b->create("layer_norm", {x, g.vector("ls", 96), g.vector("lb", 96)}, eps), "layer_norm + scale + bias", 2e-6);
  add(g.b->create("layer_norm", {x}, eps), "layer_norm", 2e-6);
  add(g.b->add(x, g.vector("av", 96)), "add broadcast", 1e-7);
  add(g.b->add(x, x2), "add", 1e-7);
  add(g.b->mul(x, g.vector("mv", 96)), "mul broadcast", 1e-7);
  add(g.b->mul(x, x2), "mul", 1e-7);
  add(g.b->create("swiglu", {x, x2}), "swiglu", 2e-6);
  add(g.b->create("silu", {x}), "silu", 2e-6);
  add(g.b->create("gelu", {x}), "gelu", 2e-6);
  Attrs sm;
  sm.set("scale", 0.7);
  add(g.b->create("softmax", {x}, sm), "softmax", 2e-6);
  add(g.b->create("softmax", {x, g.vector("mask", 96)}, sm), "softmax + mask", 2e-6);
  Value* x3 = g.b->reshape(g.input("x3", vocab, 3 * 40), {Dim::sym("n_tokens"), 3, 40});
  add(g.b->create("softmax", {x3, g.b->reshape(g.vector("mask3", 120), {3, 40})}, sm), "softmax + 2-D mask", 2e-6);
  add(g.b->create("argmax", {x}), "argmax", 0);

  // Attention block: 4 heads, 2 kv heads, head_dim 16; rope norm on q (all dims), neox on k (8 of 16).
  const int64_t H = 4, Hkv = 2, d = 16;
  auto rope = [&](Value* v, const char* mode, int64_t n_dims) {
    Attrs a;
    a.set("mode", std::string(mode));
    a.set("n_dims", n_dims);
    a.set("freq_base", 10000.0);
    a.set("freq_scale", 1.0);
    return g.b->create("rope", {v, g.pos}, a);
  };
  Value* q = rope(g.b->reshape(g.input("q", vocab, H * d), {Dim::sym("n_tokens"), H, d}), "norm", d);
  Value* k = rope(g.b->reshape(g.input("k", vocab, Hkv * d), {Dim::sym("n_tokens"), Hkv, d}), "neox", 8);
  Value* v = g.b->reshape(g.input("v", vocab, Hkv * d), {Dim::sym("n_tokens"), Hkv, d});
  add(q, "rope norm", 4e-6);
  add(k, "rope neox (partial)", 4e-6);
  const DType ct = f32_cache ? DType::F32 : DType::F16;
  g.b->declare_state("ck", {ct, {n_ctx, Hkv, d}});
  g.b->declare_state("cv", {ct, {n_ctx, Hkv, d}});
  Value* kc = g.b->create("kv_write", {g.b->state("ck"), k, g.pos});
  Value* vc = g.b->create("kv_write", {g.b->state("cv"), v, g.pos});
  Attrs sc;
  sc.set("scale", 0.25);
  // f16 caches round Q and the probabilities: a rounding flip moves a result by ~1e-3 relative.
  add(g.b->create("attention", {q, kc, vc, g.pos}, sc), f32_cache ? "attention f32" : "attention f16",
      f32_cache ? 4e-6 : 2e-4);
  return g;
}

class OpsDiff : public VulkanParamTest<Variant> {};

TEST_P(OpsDiff, EveryOpAcrossCalls) {
  for (bool f32_cache : {false, true}) {
    if (f32_cache && std::string(GetParam().name) != "device") continue;
    std::vector<Check> checks;
    Graph g = build_ops_graph(checks, 13, 40, f32_cache);
    Differential d(g, checks, ctx_, GetParam().o, compile_options(GetParam()));
    std::mt19937 rng(11);
    // A prompt, then decode steps: the cache persists between calls on both sides.
    d.call(random_ids(rng, 5, 13), iota_pos(0, 5), "5 tokens at 0");
    d.call(random_ids(rng, 1, 13), iota_pos(5, 1), "1 token at 5");
    d.call(random_ids(rng, 3, 13), iota_pos(6, 3), "3 tokens at 6");
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, OpsDiff, ::testing::ValuesIn(variants()),
                         [](const ::testing::TestParamInfo<Variant>& i) { return std::string(i.param.name); });

// Attention whose cache does not fit the shared-memory score buffer: the chunked two-pass kernel.
class AttentionChunked : public VulkanTest {};

TEST_F(AttentionChunked, MatchesReference) {
  for (const Variant& v : {variants()[0], variants()[1]}) {
    std::vector<Check> checks;
    Graph g = build_ops_graph(checks, 13, 150, false);
    VulkanCompileOptions co;
    co.attention_chunk = 64;
    Differential d(g, checks, ctx_, v.o, co);
    EXPECT_NE(d.model().compiled().plan.kernels.end(),
              std::find_if(d.model().compiled().plan.kernels.begin(), d.model().compiled().plan.kernels.end(),
                           [](const Kernel& k) { return k.name.find("chunked") != std::string::npos; }));
    std::mt19937 rng(5);
    d.call(random_ids(rng, 70, 13), iota_pos(0, 70), "70 tokens");
    d.call(random_ids(rng, 1, 13), iota_pos(140, 1), "1 token at 140");
  }
}

}  // namespace
}  // namespace nibble::vk::testing
