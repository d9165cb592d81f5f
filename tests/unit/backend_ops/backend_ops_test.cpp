// A differential harness in the spirit of llama.cpp's test-backend-ops, at the IR level: kernel
// kinds x formats x shapes of each compiled target (cpu, vulkan) against the reference executor.
//
// Each case is a recipe that builds a small module the way the frontend writes graphs (an f32
// `embedding` turns tokens into activations, then the op under test; weights are random, quantized
// ones made with the reference quantizers). The recipe runs twice from the same seed: the
// Interpreter runs the module as written, the target runs the other copy through the path the CLI
// takes (tools::make_executor: the target's pass pipeline, lowering, JIT / SPIR-V, the runtime),
// with the activation arena NaN-poisoned before every call. Every call's output must be finite and
// within a per-case normalized error NMSE = sum((got - want)^2) / sum(want^2) of the reference.
// Where the target quantizes activations (cpu; vulkan on q8 activations), the output is also
// compared, more tightly, with the reference executor running the module the target compiled (the
// same quantize ops): that isolates the kernels from the activation rounding. Cases may also name
// text the compiled module must contain (e.g. `residual = true`), so a fused epilogue, a repacked
// layout or the gemm path is known to have run rather than silently bypassed.
// Vulkan runs with the validation layer where installed (NIBBLE_VK_VALIDATION=0: off); any message
// fails the case. Vulkan legacy-format cases run twice: activations as the CLI picks them on this
// device ("auto": f32 on lavapipe) and forced to q8 blocks (the integer-dot kernels).
//
// Beyond single ops: the same weight product over calls of varying size on one executor, attention
// with batches after a prefill (MQA, head_dim 64), and block2_* cases: two llama blocks plus head as
// llama_builder writes them (fusions in context, buffer reuse across layers, the KV cache).
//
// argmax cannot end a graph (the runtime contract is one f32 result), so it is tested inside one:
// embedding(table, argmax(x)) turns the ids back into f32 rows.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ir/builder.h"
#include "ir/dtype.h"
#include "ir/interp/interpreter.h"
#include "ir/printer.h"
#include "runtime/cpu/executor.h"
#include "support/error.h"
#include "tools/executor.h"
#ifdef NIBBLE_HAVE_VULKAN
#include "runtime/vulkan/device.h"
#endif

namespace nibble::testing {
namespace {

std::string jit_cache() {
  return (std::filesystem::temp_directory_path() / "nibble-test-backend-ops-jit-cache").string();
}

// A module under construction: @forward(%tokens, %pos) -> f32[n_tokens, C], weights bound to bytes
// the module keeps alive. Deterministic: the same recipe gives the same module, bytes included.
struct Graph {
  std::unique_ptr<Module> m = std::make_unique<Module>();
  Function* f = nullptr;
  std::unique_ptr<Builder> b;
  Value* tokens = nullptr;
  Value* pos = nullptr;
  int64_t vocab = 0;  // rows of every input table; token ids are in [0, vocab)
  std::mt19937 rng{20240611};

  Graph() {
    m->name = "backend_ops";
    f = m->add_function("forward");
    b = std::make_unique<Builder>(*m, *f);
    Dim n = Dim::sym("n_tokens");
    tokens = f->add_arg("tokens", {DType::I32, {n}});
    pos = f->add_arg("pos", {DType::I32, {n}});
    m->attrs.set("n_ctx", int64_t(64));
  }

  std::vector<float> random(size_t n, float scale = 1.0f) {
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
  }

  // A weight of type t and the given dims (last dim K), values quantized with the reference quantizer.
  Value* weight_from(const std::string& name, DType t, std::vector<int64_t> dims, const std::vector<float>& vals) {
    const int64_t K = dims.back();
    const int64_t rows = int64_t(vals.size()) / K;
    auto blob = std::make_shared<std::vector<uint8_t>>(size_t(rows * row_bytes(t, K)));
    for (int64_t r = 0; r < rows; ++r)
      dtype_info(t).quantize_row(vals.data() + r * K, blob->data() + r * row_bytes(t, K), K);
    std::vector<Dim> d(dims.begin(), dims.end());
    WeightDecl& w = b->declare_weight(name, {t, d});
    w.data = blob->data();
    m->keep_alive.push_back(blob);
    return b->weight(name);
  }
  Value* weight(const std::string& name, DType t, std::vector<int64_t> dims, float scale = 1.0f, float offset = 0) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> vals = random(size_t(n), scale);
    for (float& x : vals) x += offset;
    return weight_from(name, t, std::move(dims), vals);
  }

  // f32 activations [n_tokens, D]: rows of a random f32 table selected by the token ids.
  Value* input(const std::string& name, int64_t D, float scale = 1.0f) {
    return b->create("embedding", {weight(name, DType::F32, {vocab, D}, scale), tokens});
  }

  // The frontend's linear: matmul(x, dequant(w)) {transpose_b} (f32 weights are read directly).
  Value* linear(Value* x, Value* w) {
    if (w->type.dtype != DType::F32) w = b->dequant(w);
    Attrs a;
    a.set("transpose_b", true);
    return b->create("matmul", {x, w}, std::move(a));
  }

  Value* reshape(Value* x, std::vector<int64_t> tail) {
    std::vector<Dim> d{x->type.dims[0]};
    for (int64_t t : tail) d.push_back(t);
    return b->reshape(x, d);
  }

  void result(Value* v) {
    f->results.push_back(v);
    m->attrs.set("n_vocab", v->type.dims.back().value);
  }
};

struct Call {
  int first_pos = 0;
  int n = 1;
};

struct Case {
  std::string name;  // op_format_shape_tokens; the target is appended
  std::string target;
  int64_t vocab = 0;  // token ids in [0, vocab); must be <= the output's C (n_vocab)
  std::function<void(Graph&)> build;
  std::vector<Call> calls;
  double max_nmse = 0;       // against the module as written
  double max_nmse_f32_act = 0;  // > 0: the bound instead where the target keeps activations f32
  bool quantizable_act = false;  // a legacy-format qmatmul vulkan may run on q8 activations
  std::string vk_act = "auto";   // vulkan: tools::ExecutorOptions::vulkan_activations
  int threads = 2;
  std::vector<std::string> expect;  // text the compiled (pipelined) module must contain
  double max_nmse_same_q = 0;       // > 0: the bound against the compiled module instead of the default
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name << "_" << c.target; }
std::string case_name(const ::testing::TestParamInfo<Case>& i) {
  std::string s = i.param.name + "_" + i.param.target;
  if (i.param.target == "vulkan" && i.param.vk_act != "auto") s += "_" + i.param.vk_act + "act";
  if (i.param.target == "cpu" && i.param.threads != 2) s += "_" + std::to_string(i.param.threads) + "threads";
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

std::unique_ptr<Module> build(const Case& c) {
  Graph g;
  g.vocab = c.vocab;
  c.build(g);
  return std::move(g.m);
}

double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = double(got[i]) - double(want[i]);
    num += d * d;
    den += double(want[i]) * double(want[i]);
  }
  return num / std::max(den, 1e-30);
}

// Where got and want differ: the worst element and how many differ by more than 1e-3 of the rms
// (a wrong row, head or position shows as a block of them; rounding noise as a few).
std::string where(const std::vector<float>& got, const std::vector<float>& want, int64_t C) {
  double ss = 0, worst = -1;
  size_t at = 0;
  for (size_t i = 0; i < want.size(); ++i) ss += double(want[i]) * want[i];
  const double tol = 1e-3 * std::sqrt(ss / double(std::max<size_t>(want.size(), 1)));
  size_t n = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(double(got[i]) - double(want[i]));
    if (d > tol) ++n;
    if (d > worst) worst = d, at = i;
  }
  if (got.empty()) return "no output";
  return "worst at row " + std::to_string(at / size_t(C)) + " col " + std::to_string(at % size_t(C)) + ": got " +
         std::to_string(got[at]) + ", want " + std::to_string(want[at]) + "; " + std::to_string(n) + " of " +
         std::to_string(got.size()) + " elements off by > 1e-3 rms";
}

bool validation_wanted() {
  const char* env = std::getenv("NIBBLE_VK_VALIDATION");
  return !(env && std::string(env) == "0");
}

bool have_vulkan_device() {
#ifdef NIBBLE_HAVE_VULKAN
  static const bool have = !vk::list_devices().empty();
  return have;
#else
  return false;
#endif
}

// Vulkan computes qmatmuls on f32 activations (quantize is an alias) unless the device accelerates
// 4x8-bit dot products: then q4_0/q4_1/q5_0/q5_1/q8_0 ones run on q8 activations
// (codegen/spirv/README.md, "Numerics"; ActivationQuant::Auto). K-quant activations stay f32.
bool vulkan_quantizes_activations() {
#ifdef NIBBLE_HAVE_VULKAN
  static const bool q = [] {
    std::vector<vk::DeviceInfo> d = vk::list_devices();
    return !d.empty() && d[0].int_dot_accelerated;
  }();
  return q;
#else
  return false;
#endif
}

// Against the reference executor on the compiled module (same quantized activations): f32 against
// double accumulation only. Measured <= 5.7e-14 on every cpu case (x86-64 AVX2); bound 3e-13.
constexpr double kSameQuantizationBound = 3e-13;
// Vulkan's integer-dot path on the same quantized activations: the block sums are exact integers,
// only the f32 sum of the per-block scaled terms may be ordered differently from the reference.
// Measured on lavapipe: 0 on every matmul (bitwise equal), 2.8e-15 through attention; bound 1e-11
// leaves a GPU's reduction order room (f32 reordering is ~1e-14).
constexpr double kVulkanSameQuantizationBound = 1e-11;

class BackendOps : public ::testing::TestWithParam<Case> {};

TEST_P(BackendOps, MatchesTheReferenceExecutor) {
  const Case& c = GetParam();
  if (c.target == "vulkan" && !have_vulkan_device()) GTEST_SKIP() << "no Vulkan device";
  const bool vk_q8 = c.vk_act == "q8" || (c.vk_act == "auto" && vulkan_quantizes_activations());
  const bool f32_act = c.target == "vulkan" && !(c.quantizable_act && vk_q8);
  const double bound = f32_act && c.max_nmse_f32_act > 0 ? c.max_nmse_f32_act : c.max_nmse;

  auto ref_module = build(c);
  auto target_module = build(c);
  Interpreter interp(*ref_module);

  tools::ExecutorOptions eo;
  eo.target = c.target;
  eo.threads = c.threads;
  eo.max_tokens = 32;
  eo.cache_dir = jit_cache();
  eo.poison = true;
  eo.validation = c.target == "vulkan" && validation_wanted();
  eo.vulkan_activations = c.vk_act;
  std::unique_ptr<tools::Executor> ex;
  try {
    ex = tools::make_executor(*target_module, eo);
  } catch (const Error& e) {
    // Without the validation layer installed, run unvalidated rather than not at all.
    if (!eo.validation || std::string(e.what()).find("validation") == std::string::npos) throw;
    std::fprintf(stderr, "note: Vulkan validation layer unavailable (%s), running without it\n", e.what());
    target_module = build(c);
    eo.validation = false;
    ex = tools::make_executor(*target_module, eo);
  }
  const int64_t C = ex->n_vocab();
  if (!c.expect.empty()) {
    const std::string text = print_module(*target_module);
    for (const std::string& e : c.expect)
      EXPECT_NE(text.find(e), std::string::npos) << "the compiled module has no `" << e << "`:\n" << text;
  }
  // Where the target quantizes activations as the compiled module says, the reference on that
  // module is the tight oracle.
  const bool same_q = c.target == "cpu" || !f32_act;
  const double same_q_bound = c.max_nmse_same_q > 0           ? c.max_nmse_same_q
                              : c.target == "cpu" ? kSameQuantizationBound
                                                  : kVulkanSameQuantizationBound;
  // The reference executor on the module the target compiled (after its pipeline: qmatmul on the
  // same quantized activations): isolates the kernels from the activation quantization.
  Interpreter interp_compiled(*target_module);

  std::mt19937 rng(77);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(c.vocab - 1));
  double worst = 0, worst_same_q = 0;
  for (size_t ci = 0; ci < c.calls.size(); ++ci) {
    const Call& call = c.calls[ci];
    std::vector<int32_t> tokens(size_t(call.n)), pos(size_t(call.n));
    for (int i = 0; i < call.n; ++i) tokens[size_t(i)] = tok(rng), pos[size_t(i)] = call.first_pos + i;
    std::vector<float> want = interp.forward(tokens, pos);
    std::span<const float> got_span = ex->forward(tokens, pos);
    std::vector<float> got(got_span.begin(), got_span.end());
    ASSERT_EQ(got.size(), size_t(call.n * C)) << "call " << ci;
    ASSERT_EQ(want.size(), got.size()) << "call " << ci;
    size_t bad = 0, first_bad = 0;
    for (size_t i = 0; i < got.size(); ++i)
      if (!std::isfinite(got[i]) && bad++ == 0) first_bad = i;
    EXPECT_EQ(bad, 0u) << "call " << ci << ": " << bad << " non-finite outputs, first at row " << first_bad / C
                       << " col " << first_bad % C << " (" << got[first_bad] << ")";
    for (float w : want) ASSERT_TRUE(std::isfinite(w)) << "the reference output is not finite: a bad case";
    const double e = nmse(got, want);
    worst = std::max(worst, e);
    EXPECT_LE(e, bound) << "call " << ci << " (" << call.n << " tokens from position " << call.first_pos << "): "
                        << where(got, want, C);
    // The cpu target quantizes activations exactly as the compiled module says; vulkan may keep
    // them f32 (then the check above is the tight one).
    if (same_q) {
      const std::vector<float> want_q = interp_compiled.forward(tokens, pos);
      const double e2 = nmse(got, want_q);
      worst_same_q = std::max(worst_same_q, e2);
      EXPECT_LE(e2, same_q_bound) << "call " << ci << ": against the reference executor on the compiled module: "
                                  << where(got, want_q, C);
    }
  }
  const std::string tgt = c.target + (c.target == "vulkan" && c.vk_act != "auto" ? "/" + c.vk_act : "");
  std::printf("NMSE %-44s %-10s %.3e (max %.0e)", c.name.c_str(), tgt.c_str(), worst, bound);
  if (same_q) std::printf(" | same quantization %.3e (max %.0e)", worst_same_q, same_q_bound);
  std::printf("\n");
  for (const std::string& msg : ex->take_messages()) ADD_FAILURE() << "Vulkan validation: " << msg;
}

// ---- Cases.

// Thresholds. The reference executor runs the graph as written: f32 activations, double
// accumulation, the same (quantized) weight bytes. Compiled targets quantize activations before
// quantized weight products as ggml does (q8_0 for q4_0/q5_0/q8_0, q8_1 for q4_1/q5_1, q8_K for
// k-quants), so their error is the activation rounding: an 8-bit block scale's relative error is
// about 1/(127*sqrt(12)) ~ 2e-3 per element, NMSE ~ 1e-5 on a dot product of random vectors;
// k-quants' 256-element q8_K blocks have a larger absmax, so a coarser step. Measured on the cpu
// target (x86-64, AVX2): q4_0..q8_0 <= 3.5e-5, q2_k..q6_k <= 5.1e-5; bounds 1.5e-4 and 2.5e-4.
// f16 / bf16 weights take activations rounded to f16 / bf16 on cpu (ggml's vec_dot_type): relative
// steps of 2^-11 / 2^-8, measured <= 4.3e-8 / 2.5e-6; bounds 2e-7 and 1e-5.
// f32 weights, and every format on vulkan without integer dots, run on f32 activations: only
// summation order differs (f32 against double): measured <= 1.2e-14 (cpu and lavapipe); 6e-14.
constexpr double kF32ActMatmulBound = 6e-14;
double matmul_bound(DType w) {
  if (w == DType::F32) return kF32ActMatmulBound;
  if (w == DType::F16) return 2e-7;
  if (w == DType::BF16) return 1e-5;
  return dtype_info(w).block_size == 256 ? 2.5e-4 : 1.5e-4;
}

std::string fmt_name(DType t) { return dtype_name(t); }

std::string shape(int64_t a, int64_t b) { return std::to_string(a) + "x" + std::to_string(b); }

std::vector<Call> one_call(int n, int first_pos = 0) { return {Call{first_pos, n}}; }

// matmul of [n, K] activations by a [N, K] weight of format w, optionally + bias[N] and + residual.
Case matmul_case(const std::string& target, DType w, int64_t N, int64_t K, int n, bool bias, bool residual,
                 int threads = 2) {
  Case c;
  c.name = std::string("matmul") + (bias ? "_bias" : "") + (residual ? "_residual" : "") + "_" + fmt_name(w) + "_" +
           shape(N, K) + "_t" + std::to_string(n);
  c.target = target;
  c.vocab = N;
  c.threads = threads;
  c.calls = one_call(n);
  c.max_nmse = matmul_bound(w);
  c.max_nmse_f32_act = kF32ActMatmulBound;
  c.quantizable_act = is_quantized(w) && dtype_info(w).block_size == 32;
  // The fused forms fuse-elementwise promises, and on cpu the repacked layout (quantized, N % 4 ==
  // 0) and the gemm variant (M = n_tokens).
  c.expect = {"qmatmul("};
  if (bias) c.expect.push_back("bias = true");
  if (residual) c.expect.push_back("residual = true");
  if (target == "cpu") c.expect.push_back("gemm_from = 4");
  if (target == "cpu" && is_quantized(w) && N % 4 == 0) c.expect.push_back("layout = \"rows_x4\"");
  c.build = [=](Graph& g) {
    Value* x = g.input("x_table", K);
    Value* y = g.linear(x, g.weight("w", w, {N, K}, 1.0f / std::sqrt(float(K))));
    if (bias) y = g.b->add(y, g.weight("bias", DType::F32, {N}));
    if (residual) y = g.b->add(g.input("r_table", N), y);  // add(r, qmatmul): the residual epilogue
    g.result(y);
  };
  return c;
}

Case embedding_case(const std::string& target, DType t, int64_t D, int n) {
  Case c;
  c.name = "embedding_" + fmt_name(t) + "_" + shape(D, D) + "_t" + std::to_string(n);
  c.target = target;
  c.vocab = D;
  c.calls = one_call(n);
  // The target decodes the same bytes the reference decodes: at most f32 rounding of the block
  // scale products could differ. Measured exactly 0 (cpu and lavapipe); bound 1e-12.
  c.max_nmse = 1e-12;
  c.build = [=](Graph& g) {
    g.result(g.b->create("embedding", {g.weight("table", t, {D, D}), g.tokens}));
  };
  return c;
}

// An f32 op on [n, C] activations (and more operands from `extra`), as a case.
Case f32_case(const std::string& target, const std::string& name, int64_t C, int n, double max_nmse,
              std::function<Value*(Graph&, Value* x)> op, int first_pos = 0) {
  Case c;
  c.name = name + "_f32_" + std::to_string(C) + "_t" + std::to_string(n);
  c.target = target;
  c.vocab = C;
  c.calls = one_call(n, first_pos);
  c.max_nmse = max_nmse;
  c.build = [=](Graph& g) { g.result(op(g, g.input("x_table", C))); };
  return c;
}

// Element-wise, norm, softmax and rope ops: f32 in, f32 out; the targets' float math (expf, tanhf,
// 1/sqrtf, f32 angles) against double. Measured <= 5.7e-14 (cpu), <= 9.5e-15 (lavapipe); 3e-13.
constexpr double kF32Bound = 3e-13;

std::vector<Case> f32_cases(const std::string& target, const std::vector<int>& token_counts) {
  std::vector<Case> v;
  for (int n : token_counts) {
    const int64_t C = 100;  // not a multiple of 16 or of a workgroup
    v.push_back(f32_case(target, "rms_norm_scale", C, n, kF32Bound, [](Graph& g, Value* x) {
      Attrs a;
      a.set("eps", 1e-5);
      return g.b->mul(g.b->create("rms_norm", {x}, std::move(a)), g.weight("s", DType::F32, {100}, 1.0f, 1.0f));
    }));
    v.push_back(f32_case(target, "rms_norm", C, n, kF32Bound, [](Graph& g, Value* x) {
      Attrs a;
      a.set("eps", 1e-6);
      return g.b->create("rms_norm", {x}, std::move(a));
    }));
    v.push_back(f32_case(target, "layer_norm", C, n, kF32Bound, [](Graph& g, Value* x) {
      Attrs a;
      a.set("eps", 1e-5);
      return g.b->create("layer_norm", {x}, std::move(a));
    }));
    v.push_back(f32_case(target, "layer_norm_scale_bias", C, n, kF32Bound, [](Graph& g, Value* x) {
      Attrs a;
      a.set("eps", 1e-5);
      Value* y = g.b->mul(g.b->create("layer_norm", {x}, std::move(a)), g.weight("s", DType::F32, {100}, 1.0f, 1.0f));
      return g.b->add(y, g.weight("c", DType::F32, {100}));
    }));
    v.push_back(f32_case(target, "add_row", C, n, kF32Bound,
                         [](Graph& g, Value* x) { return g.b->add(x, g.weight("v", DType::F32, {100})); }));
    v.push_back(f32_case(target, "mul_row", C, n, kF32Bound,
                         [](Graph& g, Value* x) { return g.b->mul(x, g.weight("v", DType::F32, {100})); }));
    v.push_back(f32_case(target, "add_full", C, n, kF32Bound,
                         [](Graph& g, Value* x) { return g.b->add(x, g.input("y_table", 100)); }));
    v.push_back(f32_case(target, "mul_full", C, n, kF32Bound,
                         [](Graph& g, Value* x) { return g.b->mul(x, g.input("y_table", 100)); }));
    // b [4, 25] broadcast over a [n, 4, 25]: b has several rows.
    v.push_back(f32_case(target, "add_bcast_4x25", C, n, kF32Bound, [](Graph& g, Value* x) {
      Value* y = g.b->add(g.reshape(x, {4, 25}), g.weight("v", DType::F32, {4, 25}));
      return g.reshape(y, {100});
    }));
    v.push_back(f32_case(target, "mul_bcast_4x25", C, n, kF32Bound, [](Graph& g, Value* x) {
      Value* y = g.b->mul(g.reshape(x, {4, 25}), g.weight("v", DType::F32, {4, 25}));
      return g.reshape(y, {100});
    }));
    v.push_back(f32_case(target, "silu", C, n, kF32Bound,
                         [](Graph& g, Value* x) { return g.b->create("silu", {x}); }));
    v.push_back(f32_case(target, "gelu", C, n, kF32Bound,
                         [](Graph& g, Value* x) { return g.b->create("gelu", {x}); }));
    v.push_back(f32_case(target, "swiglu", C, n, kF32Bound, [](Graph& g, Value* x) {
      return g.b->create("swiglu", {x, g.input("up_table", 100)});
    }));
    // The unfused form: silu(gate) * up.
    v.push_back(f32_case(target, "silu_mul", C, n, kF32Bound, [](Graph& g, Value* x) {
      return g.b->mul(g.b->create("silu", {x}), g.input("up_table", 100));
    }));
    v.push_back(f32_case(target, "softmax", C, n, kF32Bound, [](Graph& g, Value* x) {
      Attrs a;
      a.set("scale", 0.7);
      return g.b->create("softmax", {x}, std::move(a));
    }));
    // A mask with -inf entries (as a causal mask has), one row for every row of x.
    v.push_back(f32_case(target, "softmax_mask_scale", C, n, kF32Bound, [](Graph& g, Value* x) {
      std::vector<float> mask = g.random(100);
      for (size_t i = 0; i < mask.size(); i += 7) mask[i] = -INFINITY;
      Attrs a;
      a.set("scale", 0.7);
      return g.b->create("softmax", {x, g.weight_from("mask", DType::F32, {100}, mask)}, std::move(a));
    }));
    // x [n, 4, 25] with a mask [4, 25]: a mask row per head.
    v.push_back(f32_case(target, "softmax_mask_4x25", C, n, kF32Bound, [](Graph& g, Value* x) {
      std::vector<float> mask = g.random(100, 2.0f);
      for (size_t i = 3; i < mask.size(); i += 11) mask[i] = -INFINITY;
      Attrs a;
      a.set("scale", 1.3);
      Value* y = g.b->create("softmax", {g.reshape(x, {4, 25}), g.weight_from("mask", DType::F32, {4, 25}, mask)},
                             std::move(a));
      return g.reshape(y, {100});
    }));
    struct Freq {
      const char* name;
      double base, scale;
    };
    for (const char* mode : {"norm", "neox"})
      for (int64_t n_dims : {32, 24})
        for (Freq fq : {Freq{"", 10000.0, 1.0}, Freq{"_b5e5_s0p25", 500000.0, 0.25}}) {
          // [n, 4 heads, 32]; n_dims < head_dim leaves the tail unrotated. Positions from 7 (and
          // from 45 for the scaled frequencies: larger angles). f32 angles (repeated
          // multiplication, as the reference) against double: ~1e-13.
          v.push_back(f32_case(
              target, std::string("rope_") + mode + "_d" + std::to_string(n_dims) + fq.name, 128, n, kF32Bound,
              [mode, n_dims, fq](Graph& g, Value* x) {
                Attrs a;
                a.set("mode", std::string(mode));
                a.set("n_dims", n_dims);
                a.set("freq_base", fq.base);
                a.set("freq_scale", fq.scale);
                return g.reshape(g.b->create("rope", {g.reshape(x, {4, 32}), g.pos}, std::move(a)), {128});
              },
              fq.scale == 1.0 ? 7 : 45));
        }
    // argmax inside the graph: its ids select rows of an f32 table (exact on both sides: the same
    // f32 inputs, ties resolved to the lowest index).
    v.push_back(f32_case(target, "argmax_embedding", C, n, 0.0, [](Graph& g, Value* x) {
      return g.b->create("embedding", {g.weight("e", DType::F32, {100, 100}), g.b->create("argmax", {x})});
    }));
  }
  return v;
}

// Attention as the frontend writes it: q, k roped, k and v written into the cache, GQA (4 heads
// over 2 kv heads, head_dim 16), a prefill of 5 tokens then single tokens at later positions (the
// cache carries over; position 8 skips rows, which both sides leave zero).
struct AttnShape {
  int64_t H = 4, H_kv = 2, d = 16, n_ctx = 16;
  std::vector<Call> calls = {{0, 5}, {5, 1}, {6, 1}, {9, 1}};
  std::string suffix;  // names calls other than the default
};

Case attention_case(const std::string& target, DType cache, bool qkv_matmul, AttnShape s = {}, int threads = 2) {
  Case c;
  c.name = std::string("attention_") + (qkv_matmul ? "q8_0_qkv_" : "") + "cache_" + fmt_name(cache) + "_h" +
           std::to_string(s.H) + "_kv" + std::to_string(s.H_kv) + "_d" + std::to_string(s.d) + s.suffix;
  c.target = target;
  c.vocab = 64;
  c.threads = threads;
  c.calls = s.calls;
  // f16 cache: q and the probabilities are rounded to f16 on both sides, same order; f32 summation
  // order differs: cpu measured <= 4.7e-14 (f32 cache, d64), bound 1e-13. With q8_0 projections the
  // cpu quantizes the activations (see matmul_bound), which the softmax amplifies: measured
  // 1.25e-4, bound 5e-4. Vulkan computes scores, exp() and sums in f32 where the reference uses
  // double, so with an f16 cache a probability a few f32 ulps from an f16 rounding boundary now and
  // then rounds the other way: one such flip moves one head's output by one f16 ulp of p times v
  // (measured 4.6e-9: 64 elements of one head, d64 batches, call 2; 1.2e-9 with q8_0 projections
  // on f32 activations). Bound 2e-8 there; with an f32 cache vulkan measured <= 3e-14 (1e-13).
  const bool vk_f16_flips = target == "vulkan" && cache == DType::F16;
  c.max_nmse = qkv_matmul ? 5e-4 : vk_f16_flips ? 2e-8 : 1e-13;
  c.max_nmse_f32_act = qkv_matmul ? (vk_f16_flips ? 2e-8 : 1e-13) : 0;
  c.quantizable_act = qkv_matmul;
  c.build = [=](Graph& g) {
    const int64_t H = s.H, H_kv = s.H_kv, d = s.d, n_ctx = s.n_ctx;
    g.m->attrs.set("n_ctx", n_ctx);
    Value *q, *k, *v;
    if (qkv_matmul) {
      Value* x = g.input("x_table", 64);
      q = g.linear(x, g.weight("wq", DType::Q8_0, {H * d, 64}, 0.125f));
      k = g.linear(x, g.weight("wk", DType::Q8_0, {H_kv * d, 64}, 0.125f));
      v = g.linear(x, g.weight("wv", DType::Q8_0, {H_kv * d, 64}, 0.125f));
    } else {
      q = g.input("q_table", H * d);
      k = g.input("k_table", H_kv * d);
      v = g.input("v_table", H_kv * d);
    }
    auto rope = [&](Value* t, int64_t heads) {
      Attrs a;
      a.set("mode", std::string("norm"));
      a.set("n_dims", d);
      a.set("freq_base", 10000.0);
      a.set("freq_scale", 1.0);
      return g.b->create("rope", {g.reshape(t, {heads, d}), g.pos}, std::move(a));
    };
    Value* qh = rope(q, H);
    Value* kh = rope(k, H_kv);
    Value* vh = g.reshape(v, {H_kv, d});
    g.b->declare_state("cache_k", {cache, {n_ctx, H_kv, d}});
    g.b->declare_state("cache_v", {cache, {n_ctx, H_kv, d}});
    Value* kc = g.b->create("kv_write", {g.b->state("cache_k"), kh, g.pos});
    Value* vc = g.b->create("kv_write", {g.b->state("cache_v"), vh, g.pos});
    Attrs a;
    a.set("scale", 1.0 / std::sqrt(double(d)));
    Value* att = g.b->create("attention", {qh, kc, vc, g.pos}, std::move(a));
    g.result(g.reshape(att, {H * d}));
  };
  return c;
}

// The same weight product over several calls of different sizes on one executor: gemm and gemv
// variants alternate (cpu), command buffers recorded per token count are replayed (vulkan).
Case matmul_calls_case(const std::string& target, DType w, int64_t N, int64_t K) {
  Case c = matmul_case(target, w, N, K, 19, true, true);
  c.name = "matmul_calls_" + fmt_name(w) + "_" + shape(N, K) + "_t19_1_4_3_1";
  c.calls = {{0, 19}, {19, 1}, {20, 4}, {24, 3}, {27, 1}};
  return c;
}

// A llama block as the frontend writes it (frontends/llama/llama_builder.cpp), twice, then the
// output norm and head: rms_norm * scale, q/k/v projections (+ bias as qwen2), rope, the KV cache,
// GQA attention, the output projection + residual, swiglu FFN + residual. Everything at once: the
// fusions in context, buffer reuse across layers (plan-buffers), several calls of varying size.
// `w` is the projections' format; the head and the token table are q6_k / q8_0 / w like a mix.
Case block_case(const std::string& target, DType w, DType kv, bool qkv_bias) {
  Case c;
  const bool kq = is_quantized(w) && dtype_info(w).block_size == 256;
  const int64_t E = kq ? 256 : 64, H = 4, H_kv = 2, d = E / H, F = kq ? 512 : 96, V = 67, n_ctx = 32;
  c.name = "block2_" + fmt_name(w) + (qkv_bias ? "_qkv_bias" : "") + "_kv_" + fmt_name(kv) + "_e" +
           std::to_string(E) + "_ff" + std::to_string(F) + "_v" + std::to_string(V);
  c.target = target;
  c.vocab = V;
  c.calls = {{0, 7}, {7, 1}, {8, 1}, {9, 4}, {13, 1}};
  // Bounds. Against the module as written: quantized activations at every projection (cpu, or
  // vulkan on q8), compounding over 2 layers: measured 1.4e-4 (q4_0) .. 5.3e-4 (q4_k); bound 5e-3.
  // f32 activations (f32 weights; f16 on vulkan; vulkan on f32): measured <= 2.9e-10 (f16 rounding
  // flips, see attention_case); bound 1e-8. f16 weights on cpu round activations to f16: measured
  // 3.0e-7; bound 3e-6.
  // Against the compiled module (the same quantize ops): chains of roundings are discontinuous.
  // With an f32 cache the f32-vs-double differences rarely cross a q8 level: measured <= 6.4e-14,
  // bound 1e-6 (a few level flips, ~2e-6 / n_tokens each, would stay under it; a wrong row, head or
  // position would not). With an f16 cache, rope's ulp differences flip f16 cache entries now and
  // then, and each flip can move the next q8 quantization's levels: measured up to 2.9e-4 (q4_k,
  // q6_k; 4e-15 for q4_0), so that check is no tighter than the first; bound 2e-3. f16 roundings of
  // activations flip the same way: measured 2.0e-7 (f16 weights and cache); bound 2e-6.
  const bool half = w == DType::F16 || w == DType::BF16;
  c.max_nmse = is_quantized(w) ? 5e-3 : half ? 3e-6 : 1e-8;
  c.max_nmse_f32_act = 1e-8;
  c.max_nmse_same_q = half ? 2e-6 : !is_quantized(w) ? 1e-8 : kv == DType::F16 ? 2e-3 : 1e-6;
  c.quantizable_act = is_quantized(w) && !kq;
  c.build = [=](Graph& g) {
    g.m->attrs.set("n_ctx", n_ctx);
    const DType head_t = is_quantized(w) ? (kq ? DType::Q6_K : DType::Q8_0) : w;
    auto norm = [&](Value* x, const std::string& name) {
      Attrs a;
      a.set("eps", 1e-5);
      return g.b->mul(g.b->create("rms_norm", {x}, std::move(a)), g.weight(name, DType::F32, {E}, 0.2f, 1.0f));
    };
    auto proj = [&](Value* h, const std::string& name, int64_t N, int64_t K, bool bias) {
      Value* y = g.linear(h, g.weight(name, w, {N, K}, 1.0f / std::sqrt(float(K))));
      if (bias) y = g.b->add(y, g.weight(name + ".bias", DType::F32, {N}, 0.1f));
      return y;
    };
    auto rope = [&](Value* t, int64_t heads) {
      Attrs a;
      a.set("mode", std::string("neox"));
      a.set("n_dims", d);
      a.set("freq_base", 1000000.0);
      a.set("freq_scale", 1.0);
      return g.b->create("rope", {g.reshape(t, {heads, d}), g.pos}, std::move(a));
    };
    Value* x = g.b->create("embedding", {g.weight("token_embd", is_quantized(w) ? w : DType::F32, {V, E}), g.tokens});
    for (int l = 0; l < 2; ++l) {
      const std::string blk = "blk." + std::to_string(l) + ".";
      Value* h = norm(x, blk + "attn_norm");
      Value* q = rope(proj(h, blk + "wq", H * d, E, qkv_bias), H);
      Value* k = rope(proj(h, blk + "wk", H_kv * d, E, qkv_bias), H_kv);
      Value* v = g.reshape(proj(h, blk + "wv", H_kv * d, E, qkv_bias), {H_kv, d});
      g.b->declare_state(blk + "cache_k", {kv, {n_ctx, H_kv, d}});
      g.b->declare_state(blk + "cache_v", {kv, {n_ctx, H_kv, d}});
      Value* kc = g.b->create("kv_write", {g.b->state(blk + "cache_k"), k, g.pos});
      Value* vc = g.b->create("kv_write", {g.b->state(blk + "cache_v"), v, g.pos});
      Attrs a;
      a.set("scale", 1.0 / std::sqrt(double(d)));
      Value* att = g.reshape(g.b->create("attention", {q, kc, vc, g.pos}, std::move(a)), {H * d});
      x = g.b->add(x, proj(att, blk + "wo", E, H * d, false));
      h = norm(x, blk + "ffn_norm");
      Value* gate = proj(h, blk + "w_gate", F, E, false);
      Value* up = proj(h, blk + "w_up", F, E, false);
      x = g.b->add(x, proj(g.b->create("swiglu", {gate, up}), blk + "w_down", E, F, false));
    }
    g.result(g.linear(norm(x, "output_norm"), g.weight("output", head_t, {V, E}, 1.0f / std::sqrt(float(E)))));
  };
  c.expect = {"residual = true", "rms_norm("};
  if (qkv_bias) c.expect.push_back("bias = true");
  return c;
}

const std::vector<DType> kMatmulFormats = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                                           DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                                           DType::Q4_K, DType::Q5_K, DType::Q6_K};

bool is_kquant(DType t) { return dtype_info(t).block_size == 256; }

// MQA (4 heads over 1 kv head), head_dim 64, batches after the prefill (causal within a call).
const AttnShape kAttnBatches{4, 1, 64, 32, {{0, 5}, {5, 3}, {8, 1}, {9, 6}, {15, 1}}, "_batches"};

struct BlockSpec {
  DType w, kv;
  bool bias;
  bool vulkan;
};
const std::vector<BlockSpec> kBlocks = {
    {DType::F32, DType::F32, true, true},    {DType::F16, DType::F16, false, true},
    {DType::Q4_0, DType::F16, true, true},   {DType::Q4_K, DType::F16, false, true},
    {DType::Q4_0, DType::F32, false, false}, {DType::Q8_0, DType::F32, false, false},
    {DType::Q5_1, DType::F32, false, false}, {DType::Q6_K, DType::F32, true, false},
    {DType::Q2_K, DType::F32, false, false}, {DType::Q4_K, DType::F32, false, false},
};

std::vector<Case> cpu_cases() {
  std::vector<Case> v;
  for (DType w : kMatmulFormats) {
    // Shapes: N not a multiple of 4 or 16; K = 32 x odd for 32-blocks, 256/512 for k-quants, odd
    // for the plain formats. Tokens 1 and 3 (gemv), 4 and 19 (gemm from 4 tokens).
    const bool plain = !is_quantized(w);
    const int64_t K1 = plain ? 17 : is_kquant(w) ? 256 : 96;
    const int64_t K2 = plain ? 45 : is_kquant(w) ? 512 : 160;
    v.push_back(matmul_case("cpu", w, 33, K1, 1, false, false));
    v.push_back(matmul_case("cpu", w, 67, K2, 3, true, false));
    v.push_back(matmul_case("cpu", w, 33, K2, 4, false, true));
    v.push_back(matmul_case("cpu", w, 67, K1, 19, true, true));
    v.push_back(matmul_case("cpu", w, 64, K1, 5, false, false));  // N % 4 == 0: the rows_x4 layout
  }
  v.push_back(matmul_case("cpu", DType::Q4_K, 67, 512, 19, true, true, 3));
  v.push_back(matmul_case("cpu", DType::Q4_0, 67, 160, 3, false, true, 3));
  for (DType t : kMatmulFormats) v.push_back(embedding_case("cpu", t, is_kquant(t) ? 256 : 64, 3));
  for (Case& c : f32_cases("cpu", {1, 6})) v.push_back(std::move(c));
  for (DType cache : {DType::F16, DType::F32}) {
    v.push_back(attention_case("cpu", cache, false));
    v.push_back(attention_case("cpu", cache, true));
    v.push_back(attention_case("cpu", cache, false, kAttnBatches));
  }
  v.push_back(attention_case("cpu", DType::F16, true, kAttnBatches, 3));
  for (DType w : {DType::F16, DType::Q4_0, DType::Q5_1, DType::Q4_K}) {
    const bool plain = !is_quantized(w);
    v.push_back(matmul_calls_case("cpu", w, 67, plain ? 45 : is_kquant(w) ? 256 : 96));
  }
  for (BlockSpec b : kBlocks) v.push_back(block_case("cpu", b.w, b.kv, b.bias));
  Case b3 = block_case("cpu", DType::Q4_K, DType::F16, false);
  b3.threads = 3;
  v.push_back(std::move(b3));
  return v;
}

// lavapipe runs shaders on the CPU: fewer, smaller cases.
std::vector<Case> vulkan_cases() {
  std::vector<Case> v;
  for (DType w : kMatmulFormats) {
    const bool plain = !is_quantized(w);
    const int64_t K = plain ? 45 : is_kquant(w) ? 256 : 96;
    v.push_back(matmul_case("vulkan", w, 33, K, 1, false, false));
    v.push_back(matmul_case("vulkan", w, 67, K, 5, true, true));
  }
  // The gemm-sized batch (the batch kernel from gemm_from = 4 tokens) on a few formats.
  for (DType w : {DType::F16, DType::Q4_0, DType::Q5_1, DType::Q4_K, DType::Q6_K})
    v.push_back(matmul_case("vulkan", w, 33, is_quantized(w) ? (is_kquant(w) ? 512 : 160) : 17, 19, false, true));
  // The integer-dot kernels (q8 activations quantized on the GPU), forced on any device.
  for (DType w : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0}) {
    for (Case c : {matmul_case("vulkan", w, 33, 96, 1, false, false), matmul_case("vulkan", w, 67, 160, 5, true, true),
                   matmul_case("vulkan", w, 33, 160, 19, false, true)}) {
      c.vk_act = "q8";
      v.push_back(std::move(c));
    }
  }
  for (DType t : kMatmulFormats) v.push_back(embedding_case("vulkan", t, is_kquant(t) ? 256 : 64, 3));
  for (Case& c : f32_cases("vulkan", {3})) v.push_back(std::move(c));
  for (DType cache : {DType::F16, DType::F32}) v.push_back(attention_case("vulkan", cache, false));
  v.push_back(attention_case("vulkan", DType::F16, true));
  Case q8att = attention_case("vulkan", DType::F16, true);
  q8att.vk_act = "q8";
  v.push_back(std::move(q8att));
  for (DType cache : {DType::F16, DType::F32}) v.push_back(attention_case("vulkan", cache, false, kAttnBatches));
  for (DType w : {DType::Q4_0, DType::Q4_K}) v.push_back(matmul_calls_case("vulkan", w, 67, is_kquant(w) ? 256 : 96));
  for (BlockSpec b : kBlocks)
    if (b.vulkan) v.push_back(block_case("vulkan", b.w, b.kv, b.bias));
  Case q8block = block_case("vulkan", DType::Q4_0, DType::F16, true);
  q8block.vk_act = "q8";
  v.push_back(std::move(q8block));
  return v;
}

// The harness relies on poisoning to catch elements no kernel writes: check that it does. A plan
// whose one step writes only the first half of the logits (copy_bytes of n rows of 4 floats into
// [n, 8]): with poison the rest reads NaN on every call, without it the zeroed arena shows.
TEST(BackendOpsHarness, CpuPoisonShowsUnwrittenElements) {
  const std::vector<float> src(64, 1.5f);
  rt::CpuPlan plan;
  plan.weights.push_back({"src", src.data(), src.size() * 4});
  rt::Step st;
  st.kernel = "copy_bytes";
  st.bufs = {{rt::BufKind::Weight, 0, 0}, {rt::BufKind::Arena, 0, 0}};
  st.ints = {16};
  st.tasks_per_token = 1;
  plan.steps.push_back(st);
  plan.arena_bytes = 8 * 8 * 4;
  plan.max_tokens = 8;
  plan.n_vocab = 8;
  plan.n_ctx = 8;
  plan.logits = {rt::BufKind::Arena, 0, 0};
  for (bool poison : {false, true}) {
    rt::CpuExecutor ex(plan, nullptr, 2);
    ex.set_poison(poison);
    for (int call = 0; call < 2; ++call) {
      const int32_t tokens[3] = {0, 1, 2}, pos[3] = {0, 1, 2};
      std::span<const float> out = ex.forward(tokens, pos, 3);
      ASSERT_EQ(out.size(), 24u);
      for (size_t i = 0; i < out.size(); ++i) {
        if (i < 12)
          EXPECT_EQ(out[i], 1.5f) << i;
        else if (poison)
          EXPECT_TRUE(std::isnan(out[i])) << "poison " << poison << " call " << call << " element " << i;
        else
          EXPECT_EQ(out[i], 0.0f) << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(backend_ops_cpu, BackendOps, ::testing::ValuesIn(cpu_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(backend_ops_vulkan, BackendOps, ::testing::ValuesIn(vulkan_cases()), case_name);

}  // namespace
}  // namespace nibble::testing
