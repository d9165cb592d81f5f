// Every check of every op's type rule (ir/ops_*.cpp): a valid op verifies, and each violation is
// reported at the op's line:col with a message naming the problem.
#include <algorithm>
#include <cstring>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ir_test_util.h"

namespace nibble {
namespace {

using testing::one_op;
using testing::verify_text;

struct Case {
  const char* args;
  const char* op;
  const char* type;  // the declared result type
  const char* error;  // "" for a valid op; else the message after "L:10: 'op': "
  const char* decls = "";
};

std::string op_name(const std::string& op) { return op.substr(0, op.find('(')); }

void check(const Case& c) {
  std::string text = one_op(c.args, c.op, c.type, c.decls);
  SCOPED_TRACE(text);
  std::vector<std::string> errors = verify_text(text);
  if (!*c.error) {
    EXPECT_THAT(errors, ::testing::IsEmpty());
    return;
  }
  int line = 3 + int(std::count(c.decls, c.decls + std::strlen(c.decls), '\n'));
  std::string want = std::to_string(line) + ":10: '" + op_name(c.op) + "': " + c.error;
  EXPECT_THAT(errors, ::testing::ElementsAre(want));
}

void check_all(std::initializer_list<Case> cases) {
  for (const Case& c : cases) check(c);
}

const char* kW = "  weight @w : q4_0[8, 64]\n  weight @h : f16[8, 64]\n  state @s : f16[16, 2, 8]\n";

TEST(IrVerifierOps, Weight) {
  check_all({
      {"", "weight() {ref = @w}", "q4_0[8, 64]", "", kW},
      {"", "weight() {ref = @h}", "f16[8, 64]", "", kW},
      {"", "weight()", "q4_0[8, 64]", "needs attribute 'ref' (a @symbol naming a weight)", kW},
      {"", "weight() {ref = \"w\"}", "q4_0[8, 64]", "needs attribute 'ref' (a @symbol naming a weight)", kW},
      {"", "weight() {ref = @nope}", "q4_0[8, 64]", "unknown weight @nope", kW},
      {"", "weight() {ref = @s}", "f16[16, 2, 8]", "unknown weight @s", kW},
      {"", "weight() {ref = @w}", "q4_0[8, 32]", "result type is q4_0[8, 32] but the operands give q4_0[8, 64]", kW},
      {"%x: f32[1]", "weight(%x) {ref = @w}", "q4_0[8, 64]", "expects 0 operands, got 1", kW},
  });
}

TEST(IrVerifierOps, State) {
  check_all({
      {"", "state() {ref = @s}", "f16[16, 2, 8]", "", kW},
      {"", "state()", "f16[16, 2, 8]", "needs attribute 'ref' (a @symbol naming a state)", kW},
      {"", "state() {ref = @w}", "f16[16, 2, 8]", "unknown state @w", kW},
      {"", "state() {ref = @s}", "f32[16, 2, 8]", "result type is f32[16, 2, 8] but the operands give f16[16, 2, 8]", kW},
  });
}

TEST(IrVerifierOps, Embedding) {
  check_all({
      {"%t: q4_0[100, 64], %i: i32[n]", "embedding(%t, %i)", "f32[n, 64]", ""},
      {"%t: f16[100, 64], %i: i32[2, n]", "embedding(%t, %i)", "f32[2, n, 64]", ""},
      {"%t: q4_0[6400], %i: i32[n]", "embedding(%t, %i)", "f32[n, 64]", "table must be 2-D [vocab, dim], got q4_0[6400]"},
      {"%t: q4_0[100, 64], %i: f32[n]", "embedding(%t, %i)", "f32[n, 64]", "ids must be i32, got f32[n]"},
      {"%t: i8[100, 64], %i: i32[n]", "embedding(%t, %i)", "f32[n, 64]", "table type i8 cannot be decoded"},
      {"%t: q4_0[100, 64], %i: i32[n]", "embedding(%t, %i)", "f16[n, 64]",
       "result type is f16[n, 64] but the operands give f32[n, 64]"},
      {"%t: q4_0[100, 64]", "embedding(%t)", "f32[64]", "expects 2 operands, got 1"},
  });
}

TEST(IrVerifierOps, Dequant) {
  check_all({
      {"%w: q6_k[4, 256]", "dequant(%w)", "f32[4, 256]", ""},
      {"%w: bf16[n]", "dequant(%w)", "f32[n]", ""},
      {"%w: f32[4]", "dequant(%w)", "f32[4]", "operand must be a quantized or 16-bit float tensor, got f32[4]"},
      {"%w: i32[4]", "dequant(%w)", "f32[4]", "operand must be a quantized or 16-bit float tensor, got i32[4]"},
  });
}

TEST(IrVerifierOps, Matmul) {
  check_all({
      {"%a: f32[n, 8], %b: f32[8, 16]", "matmul(%a, %b)", "f32[n, 16]", ""},
      {"%a: f32[2, n, 8], %b: f16[16, 8]", "matmul(%a, %b) {transpose_b = true}", "f32[2, n, 16]", ""},
      {"%a: f32[8], %b: bf16[8, 3]", "matmul(%a, %b) {transpose_b = false}", "f32[3]", ""},
      {"%a: f16[n, 8], %b: f32[8, 16]", "matmul(%a, %b)", "f32[n, 16]", "operand #0 must be f32, got f16[n, 8]"},
      {"%a: f32[], %b: f32[8, 16]", "matmul(%a, %b)", "f32[16]", "a must have rank >= 1"},
      {"%a: f32[n, 8], %b: f32[8, 16, 1]", "matmul(%a, %b)", "f32[n, 16]", "b must be 2-D, got f32[8, 16, 1]"},
      {"%a: f32[n, 32], %b: q4_0[16, 32]", "matmul(%a, %b) {transpose_b = true}", "f32[n, 16]",
       "b is quantized (q4_0): dequantize it or use qmatmul"},
      {"%a: f32[n, 8], %b: i32[8, 16]", "matmul(%a, %b)", "f32[n, 16]", "b must be f32, f16 or bf16, got i32"},
      {"%a: f32[n, 8], %b: f32[16, 8]", "matmul(%a, %b)", "f32[n, 8]",
       "contraction mismatch: a has K = 8, b has K = 16"},
      {"%a: f32[n, 8], %b: f32[8, 16]", "matmul(%a, %b) {transpose_b = true}", "f32[n, 8]",
       "contraction mismatch: a has K = 8, b has K = 16"},
      {"%a: f32[n, 8], %b: f32[8, 16]", "matmul(%a, %b)", "f32[n, 8]",
       "result type is f32[n, 8] but the operands give f32[n, 16]"},
  });
}

TEST(IrVerifierOps, Qmatmul) {
  const char* aw = "%a: f32[n, 64], %w: q4_0[8, 64]";
  const char* awb = "%a: f32[n, 64], %w: q4_0[8, 64], %b: f32[8]";
  const char* awbr = "%a: f32[n, 64], %w: q4_0[8, 64], %b: f32[8], %r0: f32[n, 8]";
  check_all({
      {aw, "qmatmul(%a, %w)", "f32[n, 8]", ""},
      {"%a: f32[n, k], %w: q4_0[8, k]", "qmatmul(%a, %w)", "f32[n, 8]", ""},  // symbolic K is checked at run time
      {"%a: f32[n, 64], %w: f16[8, 64]", "qmatmul(%a, %w)", "f32[n, 8]", ""},
      {"%a: q8_0[n, 64], %w: q4_0[8, 64]", "qmatmul(%a, %w)", "f32[n, 8]", ""},  // pre-quantized activations
      {"%a: q8_1[n, 64], %w: q5_1[8, 64]", "qmatmul(%a, %w)", "f32[n, 8]", ""},
      {"%a: q8_k[n, 256], %w: q4_k[8, 256]", "qmatmul(%a, %w)", "f32[n, 8]", ""},
      {awb, "qmatmul(%a, %w, %b) {bias = true}", "f32[n, 8]", ""},
      {"%a: f32[n, 64], %w: q4_0[8, 64], %r0: f32[n, 8]", "qmatmul(%a, %w, %r0) {residual = true}", "f32[n, 8]", ""},
      {awbr, "qmatmul(%a, %w, %b, %r0) {bias = true, residual = true}", "f32[n, 8]", ""},
      {"%a: f32[n, 64], %w: q4_0[512]", "qmatmul(%a, %w)", "f32[n, 8]", "w must be 2-D [N, K], got q4_0[512]"},
      {"%a: f32[n, 64], %w: i8[8, 64]", "qmatmul(%a, %w)", "f32[n, 8]", "w type i8 cannot be decoded"},
      {"%a: f16[n, 64], %w: q4_0[8, 64]", "qmatmul(%a, %w)", "f32[n, 8]",
       "a must be f32 or q8_0 (the activation format of q4_0), got f16"},
      {"%a: q8_0[n, 256], %w: q4_k[8, 256]", "qmatmul(%a, %w)", "f32[n, 8]",
       "a must be f32 or q8_k (the activation format of q4_k), got q8_0"},
      {"%a: f32[n, 32], %w: q4_0[8, 64]", "qmatmul(%a, %w)", "f32[n, 8]",
       "contraction mismatch: a has K = 32, w has K = 64"},
      {"%a: f32[], %w: q4_0[8, 64]", "qmatmul(%a, %w)", "f32[8]", "contraction mismatch: a has K = ?, w has K = 64"},
      {"%a: f32[n, 48], %w: q4_0[8, 48]", "qmatmul(%a, %w)", "f32[n, 8]",
       "K = 48 is not a multiple of the q4_0 block size 32"},
      {awb, "qmatmul(%a, %w, %b)", "f32[n, 8]", "has 3 operands but the attributes say bias = false, residual = false"},
      {aw, "qmatmul(%a, %w) {bias = true}", "f32[n, 8]",
       "has 2 operands but the attributes say bias = true, residual = false"},
      {awbr, "qmatmul(%a, %w, %b, %r0) {bias = true}", "f32[n, 8]",
       "has 4 operands but the attributes say bias = true, residual = false"},
      {"%a: f32[n, 64], %w: q4_0[8, 64], %b: f32[9]", "qmatmul(%a, %w, %b) {bias = true}", "f32[n, 8]",
       "bias must be f32[8], got f32[9]"},
      {"%a: f32[n, 64], %w: q4_0[8, 64], %b: f16[8]", "qmatmul(%a, %w, %b) {bias = true}", "f32[n, 8]",
       "bias must be f32[8], got f16[8]"},
      {"%a: f32[n, 64], %w: q4_0[8, 64], %b: f32[1, 8]", "qmatmul(%a, %w, %b) {bias = true}", "f32[n, 8]",
       "bias must be f32[8], got f32[1, 8]"},
      {"%a: f32[n, 64], %w: q4_0[8, 64], %r0: f32[8]", "qmatmul(%a, %w, %r0) {residual = true}", "f32[n, 8]",
       "residual must be f32[n, 8], got f32[8]"},
      {"%a: f32[n, 64], %w: q4_0[8, 64], %r0: f16[n, 8]", "qmatmul(%a, %w, %r0) {residual = true}", "f32[n, 8]",
       "residual must be f32[n, 8], got f16[n, 8]"},
      {awbr, "qmatmul(%a, %w, %b, %r0, %r0) {bias = true, residual = true}", "f32[n, 8]",
       "expects 2 to 4 operands, got 5"},
      {"%a: f32[n, 64]", "qmatmul(%a)", "f32[n, 8]", "expects 2 to 4 operands, got 1"},
  });
}

TEST(IrVerifierOps, Quantize) {
  check_all({
      {"%x: f32[n, 64]", "quantize(%x)", "q8_0[n, 64]", ""},
      {"%x: f32[n, 256]", "quantize(%x)", "q8_k[n, 256]", ""},
      {"%x: f32[4, k]", "quantize(%x)", "q8_1[4, k]", ""},
      {"%x: f32[n, 64]", "quantize(%x)", "f16[n, 64]", ""},
      {"%x: f16[n, 64]", "quantize(%x)", "q8_0[n, 64]", "operand #0 must be f32, got f16[n, 64]"},
      {"%x: f32[n, 64]", "quantize(%x)", "q8_0[n, 32]", "result dims [n, 32] differ from the input's [n, 64]"},
      {"%x: f32[n, 64]", "quantize(%x)", "f32[n, 64]", "cannot quantize to f32"},
      {"%x: f32[n, 64]", "quantize(%x)", "i8[n, 64]", "cannot quantize to i8"},
      {"%x: f32[]", "quantize(%x)", "q8_0[]", "x must have rank >= 1"},
      {"%x: f32[n, 48]", "quantize(%x)", "q8_0[n, 48]", "K = 48 is not a multiple of the q8_0 block size 32"},
      {"%x: f32[n, 64]", "quantize(%x, %x)", "q8_0[n, 64]", "expects 1 operands, got 2"},
  });
}

TEST(IrVerifierOps, Binary) {
  for (const char* op : {"add", "mul"}) {
    std::string two = std::string(op) + "(%a, %b)";
    check_all({
        {"%a: f32[n, 8], %b: f32[n, 8]", two.c_str(), "f32[n, 8]", ""},
        {"%a: f32[n, 8], %b: f32[8]", two.c_str(), "f32[n, 8]", ""},
        {"%a: f32[n, 8], %b: f32[]", two.c_str(), "f32[n, 8]", ""},
        {"%a: i32[n, 8], %b: f32[8]", two.c_str(), "f32[n, 8]", "operand #0 must be f32, got i32[n, 8]"},
        {"%a: f32[n, 8], %b: f16[8]", two.c_str(), "f32[n, 8]", "operand #1 must be f32, got f16[8]"},
        {"%a: f32[n, 8], %b: f32[4]", two.c_str(), "f32[n, 8]",
         "cannot broadcast [4] to [n, 8]: b's dims must be trailing dims of a"},
        {"%a: f32[8], %b: f32[n, 8]", two.c_str(), "f32[n, 8]",
         "cannot broadcast [n, 8] to [8]: b's dims must be trailing dims of a"},
        {"%a: f32[n, 8], %b: f32[n, 8]", two.c_str(), "f32[m, 8]",
         "result type is f32[m, 8] but the operands give f32[n, 8]"},
    });
  }
  check({"%a: f32[8]", "add(%a)", "f32[8]", "expects 2 operands, got 1"});
}

TEST(IrVerifierOps, Unary) {
  for (const char* op : {"silu", "gelu"}) {
    std::string one = std::string(op) + "(%a)";
    std::string two = std::string(op) + "(%a, %a)";
    check_all({
        {"%a: f32[n, 8]", one.c_str(), "f32[n, 8]", ""},
        {"%a: bf16[n, 8]", one.c_str(), "bf16[n, 8]", "operand #0 must be f32, got bf16[n, 8]"},
        {"%a: f32[n, 8]", two.c_str(), "f32[n, 8]", "expects 1 operands, got 2"},
    });
  }
}

TEST(IrVerifierOps, Swiglu) {
  check_all({
      {"%g: f32[n, 8], %u: f32[n, 8]", "swiglu(%g, %u)", "f32[n, 8]", ""},
      {"%g: f32[n, 8], %u: f32[8]", "swiglu(%g, %u)", "f32[n, 8]", "gate f32[n, 8] and up f32[8] differ in shape"},
      {"%g: f32[n, 8], %u: f16[n, 8]", "swiglu(%g, %u)", "f32[n, 8]", "operand #1 must be f32, got f16[n, 8]"},
      {"%g: i32[n, 8], %u: f32[n, 8]", "swiglu(%g, %u)", "f32[n, 8]", "operand #0 must be f32, got i32[n, 8]"},
  });
}

TEST(IrVerifierOps, Norms) {
  for (const char* name : {"rms_norm", "layer_norm"}) {
    std::string op = name;
    auto c = [&](const char* args, const std::string& call, const char* error) {
      check({args, (op + call).c_str(), "f32[n, 8]", error});
    };
    c("%x: f32[n, 8]", "(%x) {eps = 1e-05}", "");
    c("%x: f32[n, 8], %s: f32[8]", "(%x, %s) {eps = 0}", "");  // an integer reads as a float
    c("%x: f32[n, 8]", "(%x)", "needs float attribute 'eps'");
    c("%x: f32[n, 8]", "(%x) {eps = \"small\"}", "needs float attribute 'eps'");
    c("%x: f32[n, 8]", "(%x) {eps = 1.5}", "eps = 1.5 is out of range [0, 1)");
    c("%x: f32[n, 8]", "(%x) {eps = 1.0}", "eps = 1 is out of range [0, 1)");
    c("%x: f32[n, 8]", "(%x) {eps = -1e-05}", "eps = -1e-05 is out of range [0, 1)");
    c("%x: f32[n, 8]", "(%x) {eps = nan}", "eps = nan is out of range [0, 1)");
    c("%x: f16[n, 8]", "(%x) {eps = 1e-05}", "operand #0 must be f32, got f16[n, 8]");
    c("%x: f32[n, 8], %s: f32[7]", "(%x, %s) {eps = 1e-05}", "operand #1 must be f32[8], got f32[7]");
    c("%x: f32[n, 8], %s: f16[8]", "(%x, %s) {eps = 1e-05}", "operand #1 must be f32[8], got f16[8]");
  }
  check({"%x: f32[]", "rms_norm(%x) {eps = 1e-05}", "f32[]", "x must have rank >= 1"});
  check({"%x: f32[n, 8], %s: f32[8]", "rms_norm(%x, %s, %s) {eps = 1e-05}", "f32[n, 8]",
         "expects 1 to 2 operands, got 3"});
  check({"%x: f32[n, 8], %s: f32[8], %b: f32[8]", "layer_norm(%x, %s, %b) {eps = 1e-05}", "f32[n, 8]", ""});
  check({"%x: f32[n, 8], %s: f32[8], %b: f32[n]", "layer_norm(%x, %s, %b) {eps = 1e-05}", "f32[n, 8]",
         "operand #2 must be f32[8], got f32[n]"});
  check({"%x: f32[n, 8], %s: f32[8]", "layer_norm(%x, %s, %s, %s) {eps = 1e-05}", "f32[n, 8]",
         "expects 1 to 3 operands, got 4"});
}

TEST(IrVerifierOps, Softmax) {
  check_all({
      {"%x: f32[n, 8]", "softmax(%x)", "f32[n, 8]", ""},
      {"%x: f32[n, 8], %m: f32[8]", "softmax(%x, %m) {scale = 0.5}", "f32[n, 8]", ""},
      {"%x: f16[n, 8]", "softmax(%x)", "f16[n, 8]", "operand #0 must be f32, got f16[n, 8]"},
      {"%x: f32[n, 8], %m: f16[8]", "softmax(%x, %m)", "f32[n, 8]", "operand #1 must be f32, got f16[8]"},
      {"%x: f32[n, 8], %m: f32[3]", "softmax(%x, %m)", "f32[n, 8]", "mask f32[3] does not broadcast to f32[n, 8]"},
  });
}

TEST(IrVerifierOps, Rope) {
  const char* ok = "{freq_base = 10000.0, mode = \"norm\", n_dims = 8}";
  auto rope = [](const std::string& attrs) { return "rope(%x, %p) " + attrs; };
  const char* args = "%x: f32[n, 4, 8], %p: i32[n]";
  std::vector<std::pair<std::string, const char*>> cases = {
      {rope(ok), ""},
      {rope("{freq_base = 500000, freq_scale = 0.25, mode = \"neox\", n_dims = 4}"), ""},
      {rope("{freq_base = 10000.0, n_dims = 8}"), "attribute 'mode' must be \"norm\" or \"neox\""},
      {rope("{freq_base = 10000.0, mode = \"gptj\", n_dims = 8}"), "attribute 'mode' must be \"norm\" or \"neox\""},
      {rope("{freq_base = 10000.0, mode = \"norm\"}"), "needs integer attribute 'n_dims'"},
      {rope("{freq_base = 10000.0, mode = \"norm\", n_dims = 8.0}"), "needs integer attribute 'n_dims'"},
      {rope("{freq_base = 10000.0, mode = \"norm\", n_dims = 3}"), "n_dims = 3 must be even and in (0, head_dim = 8]"},
      {rope("{freq_base = 10000.0, mode = \"norm\", n_dims = 0}"), "n_dims = 0 must be even and in (0, head_dim = 8]"},
      {rope("{freq_base = 10000.0, mode = \"norm\", n_dims = 10}"), "n_dims = 10 must be even and in (0, head_dim = 8]"},
      {rope("{mode = \"norm\", n_dims = 8}"), "needs positive float attribute 'freq_base'"},
      {rope("{freq_base = 0.0, mode = \"norm\", n_dims = 8}"), "needs positive float attribute 'freq_base'"},
      {rope("{freq_base = 10000.0, freq_scale = 0.0, mode = \"norm\", n_dims = 8}"), "freq_scale must be positive"},
      {rope("{freq_base = 10000.0, freq_scale = -1, mode = \"norm\", n_dims = 8}"), "freq_scale must be positive"},
  };
  for (const auto& [op, error] : cases) check({args, op.c_str(), "f32[n, 4, 8]", error});
  check_all({
      {"%x: f32[n, 32], %p: i32[n]", rope(ok).c_str(), "f32[n, 32]", "x must be [n, heads, head_dim], got f32[n, 32]"},
      {"%x: f16[n, 4, 8], %p: i32[n]", rope(ok).c_str(), "f16[n, 4, 8]", "operand #0 must be f32, got f16[n, 4, 8]"},
      {"%x: f32[n, 4, 8], %p: i32[m]", rope(ok).c_str(), "f32[n, 4, 8]", "positions must be i32[n], got i32[m]"},
      {"%x: f32[n, 4, 8], %p: f32[n]", rope(ok).c_str(), "f32[n, 4, 8]", "positions must be i32[n], got f32[n]"},
      {"%x: f32[n, 4, 8], %p: i32[n, 1]", rope(ok).c_str(), "f32[n, 4, 8]", "positions must be i32[n], got i32[n, 1]"},
      {"%x: f32[n, 4, d], %p: i32[n]", rope(ok).c_str(), "f32[n, 4, d]",
       "n_dims = 8 must be even and in (0, head_dim = d]"},
  });
}

TEST(IrVerifierOps, KvWrite) {
  const char* s = "  state @c : f16[16, 2, 8]\n";
  check_all({
      {"%c: f16[16, 2, 8], %x: f32[n, 2, 8], %p: i32[n]", "kv_write(%c, %x, %p)", "f16[16, 2, 8]", ""},
      {"%c: f32[16, 2, 8], %x: f32[1, 2, 8], %p: i32[1]", "kv_write(%c, %x, %p)", "f32[16, 2, 8]", ""},
      {"%c: f16[n, 2, 8], %x: f32[n, 2, 8], %p: i32[n]", "kv_write(%c, %x, %p)", "f16[n, 2, 8]",
       "cache must be static [n_ctx, kv_heads, head_dim], got f16[n, 2, 8]"},
      {"%c: f16[16, 16], %x: f32[n, 2, 8], %p: i32[n]", "kv_write(%c, %x, %p)", "f16[16, 16]",
       "cache must be static [n_ctx, kv_heads, head_dim], got f16[16, 16]"},
      {"%c: q8_0[16, 2, 32], %x: f32[n, 2, 32], %p: i32[n]", "kv_write(%c, %x, %p)", "q8_0[16, 2, 32]",
       "cache must be f32 or f16, got q8_0"},
      {"%c: f16[16, 0, 8], %x: f32[n, 0, 8], %p: i32[n]", "kv_write(%c, %x, %p)", "f16[16, 0, 8]",
       "cache dims must be positive, got f16[16, 0, 8]"},
      {"%c: f16[16, 2, 8], %x: f16[n, 2, 8], %p: i32[n]", "kv_write(%c, %x, %p)", "f16[16, 2, 8]",
       "operand #1 must be f32, got f16[n, 2, 8]"},
      {"%c: f16[16, 2, 8], %x: f32[n, 4, 8], %p: i32[n]", "kv_write(%c, %x, %p)", "f16[16, 2, 8]",
       "x must be [n, 2, 8], got f32[n, 4, 8]"},
      {"%c: f16[16, 2, 8], %x: f32[n, 16], %p: i32[n]", "kv_write(%c, %x, %p)", "f16[16, 2, 8]",
       "x must be [n, 2, 8], got f32[n, 16]"},
      {"%c: f16[16, 2, 8], %x: f32[n, 2, 8], %p: i32[2]", "kv_write(%c, %x, %p)", "f16[16, 2, 8]",
       "positions must be i32[n], got i32[2]"},
      {"%x: f32[n, 2, 8], %p: i32[n]", "kv_write(%x, %p)", "f16[16, 2, 8]", "expects 3 operands, got 2", s},
  });
}

TEST(IrVerifierOps, Attention) {
  const char* op = "attention(%q, %k, %k, %p) {scale = 0.125}";
  check_all({
      {"%q: f32[n, 4, 8], %k: f16[16, 2, 8], %p: i32[n]", op, "f32[n, 4, 8]", ""},
      {"%q: f32[n, 2, 8], %k: f32[16, 2, 8], %p: i32[n]", op, "f32[n, 2, 8]", ""},
      {"%q: f32[n, 32], %k: f16[16, 2, 8], %p: i32[n]", op, "f32[n, 32]", "q must be [n, heads, head_dim], got f32[n, 32]"},
      {"%q: f16[n, 4, 8], %k: f16[16, 2, 8], %p: i32[n]", op, "f16[n, 4, 8]", "operand #0 must be f32, got f16[n, 4, 8]"},
      {"%q: f32[n, 4, 8], %k: f16[c, 2, 8], %p: i32[n]", op, "f32[n, 4, 8]",
       "cache must be static [n_ctx, kv_heads, head_dim], got f16[c, 2, 8]"},
      {"%q: f32[n, 4, 8], %k: bf16[16, 2, 8], %p: i32[n]", op, "f32[n, 4, 8]", "cache must be f32 or f16, got bf16"},
      // A zero kv_heads used to divide by zero (SIGFPE) in the GQA check.
      {"%q: f32[n, 4, 8], %k: f16[16, 0, 8], %p: i32[n]", op, "f32[n, 4, 8]",
       "cache dims must be positive, got f16[16, 0, 8]"},
      {"%q: f32[n, 4, 4], %k: f16[16, 2, 8], %p: i32[n]", op, "f32[n, 4, 4]", "head_dim of q (4) and cache (8) differ"},
      {"%q: f32[n, 3, 8], %k: f16[16, 2, 8], %p: i32[n]", op, "f32[n, 3, 8]",
       "heads (3) must be a multiple of kv_heads (2)"},
      {"%q: f32[n, h, 8], %k: f16[16, 2, 8], %p: i32[n]", op, "f32[n, h, 8]",
       "heads (h) must be a multiple of kv_heads (2)"},
      {"%q: f32[n, 4, 8], %k: f16[16, 2, 8], %p: i32[m]", op, "f32[n, 4, 8]", "positions must be i32[n], got i32[m]"},
      {"%q: f32[n, 4, 8], %k: f16[16, 2, 8], %p: i32[n]", "attention(%q, %k, %k, %p)", "f32[n, 4, 8]",
       "needs float attribute 'scale'"},
      {"%q: f32[n, 4, 8], %k: f16[16, 2, 8], %v: f32[16, 2, 8], %p: i32[n]", "attention(%q, %k, %v, %p) {scale = 1}",
       "f32[n, 4, 8]", "k cache f16[16, 2, 8] and v cache f32[16, 2, 8] differ"},
      {"%q: f32[n, 4, 8], %k: f16[16, 2, 8], %v: q8_0[16, 2, 32], %p: i32[n]",
       "attention(%q, %k, %v, %p) {scale = 1}", "f32[n, 4, 8]", "cache must be f32 or f16, got q8_0"},
      {"%q: f32[n, 4, 8], %k: f16[16, 2, 8], %p: i32[n]", "attention(%q, %k, %p)", "f32[n, 4, 8]",
       "expects 4 operands, got 3"},
  });
}

TEST(IrVerifierOps, Reshape) {
  check_all({
      {"%x: f32[n, 4, 8]", "reshape(%x)", "f32[n, 32]", ""},
      {"%x: f32[n, 4, 8]", "reshape(%x)", "f32[2, n, 16]", ""},
      {"%x: q4_0[2, 64]", "reshape(%x)", "q4_0[128]", ""},
      {"%x: f32[n, 4, 8]", "reshape(%x)", "f16[n, 32]", "cannot change element type f32 to f16"},
      {"%x: f32[n, 4, 8]", "reshape(%x)", "f32[m, 32]", "symbolic dims of f32[n, 4, 8] and f32[m, 32] differ"},
      {"%x: f32[n, m]", "reshape(%x)", "f32[m, n]", "symbolic dims of f32[n, m] and f32[m, n] differ"},
      {"%x: f32[n, 4, 8]", "reshape(%x)", "f32[32]", "symbolic dims of f32[n, 4, 8] and f32[32] differ"},
      {"%x: f32[n, 4, 8]", "reshape(%x)", "f32[n, 33]", "f32[n, 4, 8] and f32[n, 33] have different element counts"},
      {"%x: f32[1099511627776]", "reshape(%x)", "f32[1048576, 1048576]", ""},
  });
}

TEST(IrVerifierOps, View) {
  const char* args = "%x: f32[n, 8]";
  check_all({
      {args, "view(%x) {axis = 1, offset = 2, size = 4}", "f32[n, 4]", ""},
      {args, "view(%x) {axis = 1, offset = 0, size = 8}", "f32[n, 8]", ""},
      {args, "view(%x) {axis = 1, offset = 7, size = 1}", "f32[n, 1]", ""},
      {args, "view(%x) {axis = 1, size = 4}", "f32[n, 4]", "needs integer attributes 'axis', 'offset' and 'size'"},
      {args, "view(%x) {offset = 0, size = 4}", "f32[n, 4]", "needs integer attributes 'axis', 'offset' and 'size'"},
      {args, "view(%x) {axis = 1, offset = 0}", "f32[n, 4]", "needs integer attributes 'axis', 'offset' and 'size'"},
      {args, "view(%x) {axis = 1.0, offset = 0, size = 4}", "f32[n, 4]",
       "needs integer attributes 'axis', 'offset' and 'size'"},
      {args, "view(%x) {axis = 2, offset = 0, size = 4}", "f32[n, 4]", "axis 2 out of range for rank 2"},
      {args, "view(%x) {axis = -1, offset = 0, size = 4}", "f32[n, 4]", "axis -1 out of range for rank 2"},
      {args, "view(%x) {axis = 0, offset = 0, size = 4}", "f32[4, 8]", "cannot slice the symbolic dim n"},
      {args, "view(%x) {axis = 1, offset = 6, size = 4}", "f32[n, 4]", "slice [6, 6+4) out of range [0, 8)"},
      {args, "view(%x) {axis = 1, offset = -1, size = 4}", "f32[n, 4]", "slice [-1, -1+4) out of range [0, 8)"},
      {args, "view(%x) {axis = 1, offset = 0, size = 0}", "f32[n, 0]", "slice [0, 0+0) out of range [0, 8)"},
      {args, "view(%x) {axis = 1, offset = 9223372036854775807, size = 9223372036854775807}", "f32[n, 4]",
       "slice [9223372036854775807, 9223372036854775807+9223372036854775807) out of range [0, 8)"},
  });
}

TEST(IrVerifierOps, Permute) {
  const char* args = "%x: f32[n, 4, 8]";
  check_all({
      {args, "permute(%x) {perm = [2, 0, 1]}", "f32[8, n, 4]", ""},
      {args, "permute(%x) {perm = [0, 1, 2]}", "f32[n, 4, 8]", ""},
      {args, "permute(%x)", "f32[n, 4, 8]", "needs integer array attribute 'perm'"},
      {args, "permute(%x) {perm = 1}", "f32[n, 4, 8]", "needs integer array attribute 'perm'"},
      {args, "permute(%x) {perm = [1, 0]}", "f32[4, n, 8]", "perm has 2 entries for rank 3"},
      {args, "permute(%x) {perm = [0, 0, 1]}", "f32[n, n, 4]", "perm [0, 0, 1] is not a permutation"},
      {args, "permute(%x) {perm = [0, 1, 3]}", "f32[n, 4, 8]", "perm [0, 1, 3] is not a permutation"},
      {args, "permute(%x) {perm = [-1, 0, 1]}", "f32[n, 4, 8]", "perm [-1, 0, 1] is not a permutation"},
      {args, "permute(%x) {perm = [1, 0, 2]}", "f32[n, 4, 8]",
       "result type is f32[n, 4, 8] but the operands give f32[4, n, 8]"},
  });
}

TEST(IrVerifierOps, Concat) {
  check_all({
      {"%a: f32[n, 4], %b: f32[n, 2], %c: f32[n, 1]", "concat(%a, %b, %c) {axis = 1}", "f32[n, 7]", ""},
      {"%a: i32[4], %b: i32[5]", "concat(%a, %b) {axis = 0}", "i32[9]", ""},
      {"%a: f32[n, 4], %b: f32[n, 2]", "concat(%a, %b)", "f32[n, 6]", "needs integer attribute 'axis'"},
      {"%a: f32[n, 4], %b: f32[n, 2]", "concat(%a, %b) {axis = 2}", "f32[n, 6]", "axis 2 out of range for rank 2"},
      {"%a: f32[n, 4], %b: f32[n, 2]", "concat(%a, %b) {axis = -1}", "f32[n, 6]", "axis -1 out of range for rank 2"},
      {"%a: f32[n, 4], %b: f32[n, 4]", "concat(%a, %b) {axis = 0}", "f32[n, 4]",
       "cannot concatenate along a symbolic dim"},
      {"%a: f32[4, 4], %b: f32[n, 4]", "concat(%a, %b) {axis = 0}", "f32[8, 4]",
       "cannot concatenate along a symbolic dim"},
      {"%a: f32[n, 4], %b: f16[n, 2]", "concat(%a, %b) {axis = 1}", "f32[n, 6]",
       "operand #1 f16[n, 2] does not match f32[n, 4]"},
      {"%a: f32[n, 4], %b: f32[2]", "concat(%a, %b) {axis = 1}", "f32[n, 6]",
       "operand #1 f32[2] does not match f32[n, 4]"},
      {"%a: f32[n, 4], %b: f32[n, 2], %c: f32[m, 1]", "concat(%a, %b, %c) {axis = 1}", "f32[n, 7]",
       "operand #2 differs in dim 0"},
      {"%a: f32[n, 4], %b: f32[n, 2]", "concat(%a, %b) {axis = 1}", "f32[n, 7]",
       "result type is f32[n, 7] but the operands give f32[n, 6]"},
      {"%a: f32[n, 4]", "concat(%a) {axis = 1}", "f32[n, 4]", "expects 2 to any operands, got 1"},
  });
}

TEST(IrVerifierOps, Argmax) {
  check_all({
      {"%x: f32[n, 8]", "argmax(%x)", "i32[n]", ""},
      {"%x: f32[8]", "argmax(%x)", "i32[]", ""},
      {"%x: f32[]", "argmax(%x)", "i32[]", "x must have rank >= 1"},
      {"%x: i32[n, 8]", "argmax(%x)", "i32[n]", "operand #0 must be f32, got i32[n, 8]"},
      {"%x: f32[n, 8]", "argmax(%x)", "f32[n]", "result type is f32[n] but the operands give i32[n]"},
  });
}

}  // namespace
}  // namespace nibble
