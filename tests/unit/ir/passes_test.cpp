// dce, cse, canonicalize and the pass manager.
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ir/builder.h"
#include "passes/pass.h"
#include "passes/pipeline.h"
#include "ir_test_util.h"

namespace nibble {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::error_of;

// Runs `passes` on `text` (which must verify) and returns the printed result.
std::string run_passes(const std::string& text, const std::string& passes) {
  auto m = testing::parse(text);
  EXPECT_THAT(verify(*m), IsEmpty());
  PassManager pm;
  pm.add_pipeline(split_pipeline(passes));
  pm.run(*m);
  return print_module(*m);
}

std::string func(const std::string& sig, const std::string& body, const std::string& decls = "") {
  return "module @m {\n" + decls + "  func @f" + sig + " {\n" + body + "  }\n}\n";
}

TEST(IrPasses, DceRemovesDeadChainsAndKeepsSideEffects) {
  std::string in = func("(%x: f32[4, 2, 8], %p: i32[4]) -> (f32[4, 2, 8])",
                        "    %0 = silu(%x) : f32[4, 2, 8]\n"
                        "    %1 = gelu(%0) : f32[4, 2, 8]\n"  // dead, and makes %0 dead
                        "    %2 = state() {ref = @c} : f16[8, 2, 8]\n"
                        "    %3 = kv_write(%2, %x, %p) : f16[8, 2, 8]\n"  // unused but has side effects
                        "    %4 = mul(%x, %x) : f32[4, 2, 8]\n"
                        "    return %4\n",
                        "  state @c : f16[8, 2, 8]\n");
  EXPECT_EQ(run_passes(in, "dce"), func("(%x: f32[4, 2, 8], %p: i32[4]) -> (f32[4, 2, 8])",
                                        "    %0 = state() {ref = @c} : f16[8, 2, 8]\n"
                                        "    %1 = kv_write(%0, %x, %p) : f16[8, 2, 8]\n"
                                        "    %2 = mul(%x, %x) : f32[4, 2, 8]\n"
                                        "    return %2\n",
                                        "  state @c : f16[8, 2, 8]\n"));
  // Arguments and declarations are never removed; a function returning an argument keeps no ops.
  EXPECT_EQ(run_passes(func("(%x: f32[4]) -> (f32[4])", "    %0 = silu(%x) : f32[4]\n    return %x\n",
                            "  weight @w : f32[4]\n"),
                       "dce"),
            func("(%x: f32[4]) -> (f32[4])", "    return %x\n", "  weight @w : f32[4]\n"));
}

TEST(IrPasses, CseMergesIdenticalPureOps) {
  std::string in = func("(%x: f32[4, 8], %p: i32[4]) -> (f32[4, 8], f32[4, 8], f32[8, 4], f32[32])",
                        "    %0 = weight() {ref = @w} : f32[8]\n"
                        "    %1 = weight() {ref = @w} : f32[8]\n"   // same as %0
                        "    %2 = add(%x, %0) : f32[4, 8]\n"
                        "    %3 = add(%x, %1) : f32[4, 8]\n"         // same as %2 once %1 is %0
                        "    %5 = rms_norm(%x) {eps = 1e-05} : f32[4, 8]\n"
                        "    %6 = rms_norm(%x) {eps = 1e-06} : f32[4, 8]\n"  // attrs differ
                        "    %7 = reshape(%x) : f32[8, 4]\n"
                        "    %8 = reshape(%x) : f32[32]\n"           // type differs
                        "    %9 = reshape(%x) : f32[8, 4]\n"         // same as %7
                        "    %10 = add(%5, %6) : f32[4, 8]\n"
                        "    %11 = add(%2, %3) : f32[4, 8]\n"
                        "    return %11, %10, %9, %8\n",
                        "  weight @w : f32[8]\n");
  EXPECT_EQ(run_passes(in, "cse"),
            func("(%x: f32[4, 8], %p: i32[4]) -> (f32[4, 8], f32[4, 8], f32[8, 4], f32[32])",
                 "    %0 = weight() {ref = @w} : f32[8]\n"
                 "    %1 = add(%x, %0) : f32[4, 8]\n"
                 "    %2 = rms_norm(%x) {eps = 1e-05} : f32[4, 8]\n"
                 "    %3 = rms_norm(%x) {eps = 1e-06} : f32[4, 8]\n"
                 "    %4 = reshape(%x) : f32[8, 4]\n"
                 "    %5 = reshape(%x) : f32[32]\n"
                 "    %6 = add(%2, %3) : f32[4, 8]\n"
                 "    %7 = add(%1, %1) : f32[4, 8]\n"
                 "    return %7, %6, %4, %5\n",
                 "  weight @w : f32[8]\n"));
}

TEST(IrPasses, CseKeepsSideEffects) {
  std::string body =
      "    %0 = state() {ref = @c} : f16[8, 2, 8]\n"
      "    %1 = kv_write(%0, %x, %p) : f16[8, 2, 8]\n"
      "    %2 = kv_write(%0, %x, %p) : f16[8, 2, 8]\n"
      "    return %1, %2\n";
  std::string in = func("(%x: f32[4, 2, 8], %p: i32[4]) -> (f16[8, 2, 8], f16[8, 2, 8])", body,
                        "  state @c : f16[8, 2, 8]\n");
  EXPECT_EQ(run_passes(in, "cse"), in);
  EXPECT_EQ(run_passes(in, "cse,dce"), in);
}

TEST(IrPasses, CanonicalizeFoldsReshapes) {
  std::string in = func("(%x: f32[n, 4, 8]) -> (f32[n, 4, 8], f32[n, 2, 16], f32[n, 32])",
                        "    %0 = reshape(%x) : f32[n, 4, 8]\n"  // identity
                        "    %1 = reshape(%x) : f32[n, 32]\n"
                        "    %2 = reshape(%1) : f32[n, 2, 16]\n"  // reshape of reshape: reads %x
                        "    %3 = reshape(%1) : f32[n, 4, 8]\n"   // back to %x's type: folds away
                        "    %4 = silu(%3) : f32[n, 4, 8]\n"
                        "    %5 = add(%4, %0) : f32[n, 4, 8]\n"
                        "    return %5, %2, %1\n");
  EXPECT_EQ(run_passes(in, "canonicalize"),
            func("(%x: f32[n, 4, 8]) -> (f32[n, 4, 8], f32[n, 2, 16], f32[n, 32])",
                 "    %0 = reshape(%x) : f32[n, 32]\n"
                 "    %1 = reshape(%x) : f32[n, 2, 16]\n"
                 "    %2 = silu(%x) : f32[n, 4, 8]\n"
                 "    %3 = add(%2, %x) : f32[n, 4, 8]\n"
                 "    return %3, %1, %0\n"));
}

TEST(IrPasses, CanonicalizeComposesPermutes) {
  std::string in = func("(%x: f32[2, 3, 5]) -> (f32[5, 2, 3], f32[2, 3, 5], f32[3, 2, 5])",
                        "    %0 = permute(%x) {perm = [1, 2, 0]} : f32[3, 5, 2]\n"
                        "    %1 = permute(%0) {perm = [1, 2, 0]} : f32[5, 2, 3]\n"  // = perm [2, 0, 1] of %x
                        "    %2 = permute(%1) {perm = [1, 2, 0]} : f32[2, 3, 5]\n"  // back to %x
                        "    %3 = permute(%x) {perm = [0, 1, 2]} : f32[2, 3, 5]\n"  // identity
                        "    %4 = permute(%3) {perm = [1, 0, 2]} : f32[3, 2, 5]\n"
                        "    %5 = add(%2, %3) : f32[2, 3, 5]\n"
                        "    return %1, %5, %4\n");
  EXPECT_EQ(run_passes(in, "canonicalize,dce"),
            func("(%x: f32[2, 3, 5]) -> (f32[5, 2, 3], f32[2, 3, 5], f32[3, 2, 5])",
                 "    %0 = permute(%x) {perm = [2, 0, 1]} : f32[5, 2, 3]\n"
                 "    %1 = permute(%x) {perm = [1, 0, 2]} : f32[3, 2, 5]\n"
                 "    %2 = add(%x, %x) : f32[2, 3, 5]\n"
                 "    return %0, %2, %1\n"));
}

TEST(IrPasses, CanonicalizeReinfersTypes) {
  Module m;
  m.name = "m";
  Function& f = *m.add_function("f");
  Builder b(m, f);
  Value* x = f.add_arg("x", {DType::F32, {4, 8}});
  Op* s = b.create("silu", {x});
  Op* mx = b.create("argmax", {s});
  f.results = {mx};
  x->type = {DType::F32, {Dim::sym("n"), 8}};  // a frontend rebinding the input shape
  EXPECT_FALSE(verify(m).empty());
  PassManager pm;
  pm.add("canonicalize");
  pm.run(m);
  EXPECT_EQ(s->type.str(), "f32[n, 8]");
  EXPECT_EQ(mx->type.str(), "i32[n]");
  x->type = {DType::I32, {4, 8}};
  EXPECT_EQ(error_of([&] { pm.run(m); }), "canonicalize: 'silu' at 0:0: operand #0 must be f32, got i32[4, 8]");
}

TEST(IrPassManager, UnknownPassListsTheKnownOnes) {
  std::string known;
  for (const PassInfo& p : registered_passes()) known += (known.empty() ? "" : ", ") + p.name;
  EXPECT_THAT(known, ::testing::StartsWith("canonicalize, cse, dce"));
  PassManager pm;
  EXPECT_EQ(error_of([&] { pm.add("fold"); }), "unknown pass 'fold' (known: " + known + ")");
  EXPECT_EQ(error_of([&] { pm.add_pipeline({"cse", "DCE"}); }), "unknown pass 'DCE' (known: " + known + ")");
}

TEST(IrPassManager, RegistryAndPipelines) {
  std::vector<std::string> names;
  for (const PassInfo& p : registered_passes()) {
    names.push_back(p.name);
    EXPECT_FALSE(p.summary.empty());
    EXPECT_NE(p.create(), nullptr);
    EXPECT_EQ(find_pass(p.name), &p);
  }
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(find_pass("nope"), nullptr);
  EXPECT_EQ(default_pipeline("ref"), (std::vector<std::string>{"canonicalize", "cse", "dce"}));
  EXPECT_EQ(error_of([] { default_pipeline("tpu"); }), "unknown target 'tpu' (expected ref, cpu or vulkan)");
  EXPECT_EQ(split_pipeline("a,b , c"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(split_pipeline(" cse,,\tdce, "), (std::vector<std::string>{"cse", "dce"}));
  EXPECT_THAT(split_pipeline(""), IsEmpty());
  EXPECT_THAT(split_pipeline(",, ,"), IsEmpty());
}

TEST(IrPassManager, VerifierFailureNamesThePass) {
  // The pass manager verifies after every pass, so IR that is broken when a pass finishes is
  // blamed on that pass (here it was broken from the start: the tool verifies before passes).
  Module m;
  m.name = "m";
  Function& f = *m.add_function("main");
  Builder b(m, f);
  Value* x = f.add_arg("x", {DType::F32, {4}});
  Op* s = b.create("silu", {x});
  s->type = {DType::F32, {5}};
  f.results = {s};
  PassManager pm;
  pm.add_pipeline({"cse", "dce"});
  EXPECT_EQ(error_of([&] { pm.run(m); }),
            "after pass 'cse':@main: 'silu': result type is f32[5] but the operands give f32[4]");
}

TEST(IrPassManager, Instrumentation) {
  std::string in = func("(%x: f32[4]) -> (f32[4])",
                        "    %0 = silu(%x) : f32[4]\n    %1 = silu(%x) : f32[4]\n    %2 = add(%0, %1) : f32[4]\n"
                        "    %3 = gelu(%x) : f32[4]\n    return %2\n");
  auto run = [&](PassInstrumentation instr) {
    std::ostringstream dump;
    instr.dump = &dump;
    auto m = testing::parse(in);
    PassManager pm({}, instr);
    pm.add_pipeline({"cse", "dce"});
    pm.run(*m);
    return dump.str();
  };
  std::string after_cse = func("(%x: f32[4]) -> (f32[4])",
                               "    %0 = silu(%x) : f32[4]\n    %1 = add(%0, %0) : f32[4]\n"
                               "    %2 = gelu(%x) : f32[4]\n    return %1\n");
  std::string after_dce =
      func("(%x: f32[4]) -> (f32[4])", "    %0 = silu(%x) : f32[4]\n    %1 = add(%0, %0) : f32[4]\n    return %1\n");
  const std::string cse_banner = "(common-subexpression elimination: merges identical pure ops) //----- //\n";
  const std::string dce_banner = "(dead-code elimination: removes unused ops without side effects) //----- //\n";

  EXPECT_EQ(run({}), "");
  PassInstrumentation all;
  all.print_after_all = true;
  EXPECT_EQ(run(all), "// -----// IR Dump After cse " + cse_banner + after_cse + "// -----// IR Dump After dce " +
                          dce_banner + after_dce);
  PassInstrumentation before;
  before.print_before = {"dce"};
  EXPECT_EQ(run(before), "// -----// IR Dump Before dce " + dce_banner + after_cse);
  PassInstrumentation after;
  after.print_after = {"cse"};
  EXPECT_EQ(run(after), "// -----// IR Dump After cse " + cse_banner + after_cse);
  PassInstrumentation timing;
  timing.time_passes = true;
  std::string report = run(timing);
  EXPECT_THAT(report, ::testing::StartsWith("// ===== Pass execution timing report =====\n"
                                            "//    wall (ms)   share  pass\n"));
  EXPECT_THAT(report, ::testing::MatchesRegex("(.|\n)*//  +[0-9]+\\.[0-9]{3}  +[0-9.]+%  cse\n"
                                              "//  +[0-9]+\\.[0-9]{3}  +[0-9.]+%  dce\n"
                                              "//  +[0-9]+\\.[0-9]{3}  100\\.0%  total\n"));
}

TEST(IrPasses, DefaultPipelineIsIdempotent) {
  std::string in = func("(%x: f32[n, 4, 8]) -> (f32[n, 32])",
                        "    %0 = reshape(%x) : f32[n, 32]\n    %1 = reshape(%0) : f32[n, 4, 8]\n"
                        "    %2 = reshape(%1) : f32[n, 32]\n    %3 = reshape(%x) : f32[n, 32]\n"
                        "    %4 = add(%2, %3) : f32[n, 32]\n    return %4\n");
  std::string once = run_passes(in, "canonicalize,cse,dce");
  EXPECT_EQ(once, func("(%x: f32[n, 4, 8]) -> (f32[n, 32])",
                       "    %0 = reshape(%x) : f32[n, 32]\n    %1 = add(%0, %0) : f32[n, 32]\n    return %1\n"));
  EXPECT_EQ(run_passes(once, "canonicalize,cse,dce"), once);
}

}  // namespace
}  // namespace nibble
