// Structural verifier rules: symbols, declarations, definitions before uses, results, locations.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ir/builder.h"
#include "ir_test_util.h"

namespace nibble {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::error_of;
using testing::verify_text;

std::string module_with(const std::string& decls) {
  return "module @m {\n" + decls + "  func @f(%x: f32[4]) -> (f32[4]) {\n    return %x\n  }\n}\n";
}

TEST(IrVerifier, DeclarationRules) {
  EXPECT_THAT(verify_text(module_with("  weight @w : q4_0[4, 64]\n  weight @k : q4_k[1, 512]\n  state @s : f16[8]\n")),
              IsEmpty());
  // Block-quantized rows must hold whole blocks. Messages start at the declaration (line:col).
  EXPECT_THAT(verify_text(module_with("  weight @w : q4_0[4, 48]\n")),
              ElementsAre("2:3: weight @w: rows of 48 must be a multiple of the q4_0 block size 32"));
  EXPECT_THAT(verify_text(module_with("  weight @w : q6_k[4, 128]\n")),
              ElementsAre("2:3: weight @w: rows of 128 must be a multiple of the q6_k block size 256"));
  EXPECT_THAT(verify_text(module_with("  weight @w : q8_0[]\n")),
              ElementsAre("2:3: weight @w: rows of ? must be a multiple of the q8_0 block size 32"));
  EXPECT_THAT(verify_text(module_with("  state @s : q8_0[2, 33]\n")),
              ElementsAre("2:3: state @s: rows of 33 must be a multiple of the q8_0 block size 32"));
  // Declarations are static with positive dims.
  EXPECT_THAT(verify_text(module_with("  weight @w : f32[n, 4]\n")),
              ElementsAre("2:3: weight @w: type f32[n, 4] must be static"));
  EXPECT_THAT(verify_text(module_with("  weight @w : q4_0[4, n]\n")),
              ElementsAre("2:3: weight @w: type q4_0[4, n] must be static",
                          "2:3: weight @w: rows of n must be a multiple of the q4_0 block size 32"));
  EXPECT_THAT(verify_text(module_with("  state @s : f32[0, 4]\n")), ElementsAre("2:3: state @s: dims must be positive"));
  EXPECT_THAT(verify_text(module_with("  weight @w : f32[]\n")), IsEmpty());  // a scalar is fine
}

TEST(IrVerifier, DuplicateSymbols) {
  // At the second declaration.
  EXPECT_THAT(verify_text(module_with("  weight @w : f32[4]\n  weight @w : f32[4]\n")),
              ElementsAre("3:3: symbol @w declared twice"));
  EXPECT_THAT(verify_text(module_with("  weight @w : f32[4]\n  state @w : f32[4]\n")),
              ElementsAre("3:3: symbol @w declared twice"));
  EXPECT_THAT(verify_text(module_with("  state @f : f32[4]\n")), ElementsAre("3:3: symbol @f declared twice"));
  EXPECT_THAT(verify_text("module @m {\n  func @f(%x: f32[4]) -> (f32[4]) {\n    return %x\n  }\n"
                          "  func @f(%y: f32[4]) -> (f32[4]) {\n    return %y\n  }\n}\n"),
              ElementsAre("5:3: symbol @f declared twice"));
  // A module built in memory has no locations: the message stands alone.
  Module m;
  m.weights.push_back({"w", TensorType{DType::F32, {4}}, {}, nullptr});
  m.weights.push_back({"w", TensorType{DType::F32, {4}}, {}, nullptr});
  EXPECT_THAT(verify(m), ElementsAre("symbol @w declared twice"));
}

TEST(IrVerifier, UnknownWeightRefAndWrongResultType) {
  EXPECT_THAT(verify_text("module @m {\n  state @s : f32[4]\n  func @f() -> (f32[4]) {\n"
                          "    %0 = weight() {ref = @s} : f32[4]\n    %1 = state() {ref = @nope} : f32[4]\n"
                          "    %2 = silu(%0) : f16[4]\n    return %0\n  }\n}\n"),
              ElementsAre("4:10: 'weight': unknown weight @s", "5:10: 'state': unknown state @nope",
                          "6:10: 'silu': result type is f16[4] but the operands give f32[4]"));
}

// Everything the parser cannot produce: ops built in memory out of order or with missing pieces.
class IrVerifierBuilt : public ::testing::Test {
 protected:
  IrVerifierBuilt() : f(*m.add_function("main")), b(m, f) {
    m.name = "m";
    x = f.add_arg("x", {DType::F32, {4}});
  }
  Module m;
  Function& f;
  Builder b;
  Value* x;
};

TEST_F(IrVerifierBuilt, UseBeforeDef) {
  Op* a = b.create("silu", {x});
  Op* c = b.create("gelu", {a});
  f.results = {c};
  EXPECT_THAT(verify(m), IsEmpty());
  f.ops.splice(f.ops.begin(), f.ops, std::prev(f.ops.end()));  // move gelu before silu
  EXPECT_THAT(verify(m), ElementsAre("@main: 'gelu': operand #0 is used before it is defined"));
}

TEST_F(IrVerifierBuilt, ValuesFromElsewhere) {
  Function& g = *m.add_function("g");
  Value* y = g.add_arg("y", {DType::F32, {4}});
  Op* a = b.add(x, x);
  a->operands[1] = y;  // another function's argument
  f.results = {a};
  g.results = {a};  // another function's op
  EXPECT_THAT(verify(m), ElementsAre("@main: 'add': operand #1 is used before it is defined",
                                     "@g: function @g returns an undefined value"));
  a->operands[1] = nullptr;
  EXPECT_THAT(verify(m), ::testing::Contains("@main: 'add': operand #1 is used before it is defined"));
}

TEST_F(IrVerifierBuilt, Results) {
  EXPECT_THAT(verify(m), ElementsAre("@main: function @main returns nothing"));
  f.results = {nullptr};
  EXPECT_THAT(verify(m), ElementsAre("@main: function @main returns an undefined value"));
  f.results = {x};
  EXPECT_THAT(verify(m), IsEmpty());
}

TEST_F(IrVerifierBuilt, ArgumentsAndArity) {
  f.add_arg("x", {DType::F32, {4}});
  Op* a = b.create("silu", {x});
  a->operands.push_back(x);  // arity is checked before the type rule runs
  Op* c = b.create("concat", {x, x}, [] { Attrs at; at.set("axis", int64_t(0)); return at; }());
  c->operands.resize(1);
  f.results = {x};
  EXPECT_THAT(verify(m), ElementsAre("@main: argument %x declared twice", "@main: 'silu': expects 1 operands, got 2",
                                     "@main: 'concat': expects 2 to any operands, got 1"));
}

TEST_F(IrVerifierBuilt, LocationsOfParsedOpsAndFunctions) {
  f.loc = {7, 3};
  Op* a = b.create("silu", {x});
  a->loc = {9, 12};
  a->type = {DType::F32, {5}};
  EXPECT_THAT(verify(m), ElementsAre("9:12: 'silu': result type is f32[5] but the operands give f32[4]",
                                     "7:3: function @main returns nothing"));
}

TEST(IrVerifier, VerifyOrThrowPrefixesEveryProblem) {
  auto m = testing::parse("module @m {\n  weight @w : q4_0[3]\n  func @f(%x: f32[4]) -> (f32[4]) {\n"
                          "    %0 = silu(%x) : f32[5]\n    return %x\n  }\n}\n");
  EXPECT_EQ(error_of([&] { verify_or_throw(*m, "model.nir"); }),
            "model.nir:2:3: weight @w: rows of 3 must be a multiple of the q4_0 block size 32\n"
            "model.nir:4:10: 'silu': result type is f32[5] but the operands give f32[4]");
  auto ok = testing::parse(module_with(""));
  EXPECT_NO_THROW(verify_or_throw(*ok, "ok.nir"));
}

}  // namespace
}  // namespace nibble
