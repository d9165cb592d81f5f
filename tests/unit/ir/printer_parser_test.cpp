// Printer and parser: print(parse(text)) == text for printed text, and parse(print(m)) rebuilds a
// module built in memory.
#include <cstdio>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ir/builder.h"
#include "ir_test_util.h"

namespace nibble {
namespace {

using testing::parse;

const char* kLlamaLayer = R"(module @tiny attributes {arch = "llama", eps = 1e-05, n_ctx = 16, rope_base = 10000.0} {
  weight @tok : q4_k[32, 256] {file = "tiny.gguf", offset = 0}
  weight @norm : f32[256] {file = "tiny.gguf", offset = 4608}
  weight @wq : q8_0[256, 256] {file = "tiny.gguf", offset = 5632}
  weight @wk : q8_0[64, 256] {file = "tiny.gguf", offset = 75264}
  weight @out : f16[32, 256] {file = "tiny.gguf", layout = "rows", offset = 92672}
  state @cache_k : f16[16, 1, 64]
  state @cache_v : f16[16, 1, 64]
  func @forward(%tokens: i32[n], %pos: i32[n]) -> (f32[n, 32]) {
    %0 = weight() {ref = @tok} : q4_k[32, 256]
    %embd = embedding(%0, %tokens) : f32[n, 256]
    %1 = weight() {ref = @norm} : f32[256]
    %2 = rms_norm(%embd, %1) {eps = 1e-05} : f32[n, 256]
    %3 = weight() {ref = @wq} : q8_0[256, 256]
    %4 = qmatmul(%2, %3) : f32[n, 256]
    %5 = reshape(%4) : f32[n, 4, 64]
    %6 = rope(%5, %pos) {freq_base = 10000.0, mode = "neox", n_dims = 64} : f32[n, 4, 64]
    %7 = weight() {ref = @wk} : q8_0[64, 256]
    %8 = qmatmul(%2, %7) : f32[n, 64]
    %9 = reshape(%8) : f32[n, 1, 64]
    %10 = state() {ref = @cache_k} : f16[16, 1, 64]
    %11 = kv_write(%10, %9, %pos) : f16[16, 1, 64]
    %12 = state() {ref = @cache_v} : f16[16, 1, 64]
    %13 = kv_write(%12, %9, %pos) : f16[16, 1, 64]
    %14 = attention(%6, %11, %13, %pos) {scale = 0.125} : f32[n, 4, 64]
    %15 = reshape(%14) : f32[n, 256]
    %layer.0 = add(%embd, %15) : f32[n, 256]
    %16 = weight() {ref = @out} : f16[32, 256]
    %logits = matmul(%layer.0, %16) {transpose_b = true} : f32[n, 32]
    return %logits
  }
}
)";

const char* kShapes = R"(module @"shapes & more" {
  weight @"odd name" : f32[2, 3]
  func @main(%x: f32[4, 6], %arg1: f32[], %y: f32[n, 8]) -> (f32[6, 4], i32[4], f32[n, 8], f32[4, 6]) {
    %0 = permute(%x) {perm = [1, 0]} : f32[6, 4]
    %1 = argmax(%x) : i32[4]
    %2 = view(%y) {axis = 1, offset = 0, size = 4} : f32[n, 4]
    %3 = concat(%2, %2) {axis = 1} : f32[n, 8]
    %4 = softmax(%3, %arg1) {scale = -inf} : f32[n, 8]
    return %0, %1, %4, %x
  }
  func @second(%x: f32[2]) -> (f32[2]) {
    %0 = silu(%x) : f32[2]
    %a.b_c = gelu(%0) : f32[2]
    return %a.b_c
  }
}
)";

const char* kEmpty = "module @empty {\n}\n";

TEST(IrPrinter, PrintOfParseIsIdentityOnPrintedText) {
  for (const char* text : {kLlamaLayer, kShapes, kEmpty}) {
    auto m = parse(text);
    EXPECT_EQ(print_module(*m), text);
    EXPECT_THAT(verify(*m), ::testing::IsEmpty()) << text;
  }
}

TEST(IrPrinter, NormalizesAndRenumbers) {
  // Comments, spacing, number spellings, attribute order and numeric names are not kept.
  auto m = parse(R"(// leading comment
module   @m attributes{b=+7,a=0.50}{ // trailing
  func @f(%0: f32[4], %1 : f32[4]) -> (f32[4]) {
    %7 = add(%0,%1):f32[4]
    %x = silu(%7) {k = 1E3, j = nan, i = +inf, h = [ +1 , -2 ]} : f32[4]
    %3 = mul(%x, %7) : F32[4]
    return %3
  }
})");
  EXPECT_EQ(print_module(*m), R"(module @m attributes {a = 0.5, b = 7} {
  func @f(%arg0: f32[4], %arg1: f32[4]) -> (f32[4]) {
    %0 = add(%arg0, %arg1) : f32[4]
    %x = silu(%0) {h = [1, -2], i = inf, j = nan, k = 1000.0} : f32[4]
    %1 = mul(%x, %0) : f32[4]
    return %1
  }
}
)");
}

TEST(IrPrinter, ParsedStructure) {
  auto m = parse(kLlamaLayer);
  EXPECT_EQ(m->name, "tiny");
  EXPECT_EQ(m->attrs.get_string("arch"), "llama");
  ASSERT_EQ(m->weights.size(), 5u);
  EXPECT_EQ(m->weights[1].attrs.get_int("offset"), 4608);
  EXPECT_EQ(m->weights[0].type.str(), "q4_k[32, 256]");
  ASSERT_EQ(m->states.size(), 2u);
  Function* f = m->find_function("forward");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->loc.line, 9);
  EXPECT_EQ(f->loc.col, 3);
  ASSERT_EQ(f->args.size(), 2u);
  EXPECT_EQ(f->args[1]->name, "pos");
  EXPECT_EQ(f->ops.size(), 20u);
  const Op& first = *f->ops.front();
  EXPECT_EQ(first.loc.line, 10);
  EXPECT_EQ(first.loc.col, 10);
  EXPECT_EQ(first.name, "0");
  ASSERT_EQ(f->results.size(), 1u);
  EXPECT_EQ(f->results[0]->name, "logits");
  EXPECT_EQ(f->results[0]->def->operand(0)->name, "layer.0");
}

TEST(IrPrinter, ParseOfPrintRebuildsABuiltModule) {
  Module m;
  m.name = "built";
  m.attrs.set("eps", 1e-6);
  m.attrs.set("note", std::string("tab\there \"quoted\" \x01"));
  Function& f = *m.add_function("main");
  Builder b(m, f);
  b.declare_weight("blk.0.w", {DType::Q4_0, {8, 64}}, [] { Attrs a; a.set("offset", int64_t(96)); return a; }());
  b.declare_state("a b", {DType::F32, {4, 1, 8}});
  Value* x = f.add_arg("", {DType::F32, {Dim::sym("n"), 64}});  // unnamed: printed %arg0
  Value* p = f.add_arg("7", {DType::I32, {Dim::sym("n")}});     // numeric: printed %arg1
  Op* w = b.weight("blk.0.w");
  Op* y = b.create("qmatmul", {x, w}, {}, "y");
  Op* y2 = b.create("silu", {y}, {}, "y");      // duplicate name: printed %y_1
  Op* odd = b.create("gelu", {y2}, {}, "a-b c");  // characters a %name cannot hold: printed %a_b_c
  Op* r = b.reshape(odd, {Dim::sym("n"), 1, 8});
  Op* s = b.state("a b");
  Op* kv = b.create("kv_write", {s, r, p});
  f.results = {odd, kv};
  ASSERT_THAT(verify(m), ::testing::IsEmpty());

  std::string text = print_module(m);
  EXPECT_EQ(text, R"(module @built attributes {eps = 1e-06, note = "tab\there \"quoted\" \x01"} {
  weight @blk.0.w : q4_0[8, 64] {offset = 96}
  state @"a b" : f32[4, 1, 8]
  func @main(%arg0: f32[n, 64], %arg1: i32[n]) -> (f32[n, 8], f32[4, 1, 8]) {
    %0 = weight() {ref = @blk.0.w} : q4_0[8, 64]
    %y = qmatmul(%arg0, %0) : f32[n, 8]
    %y_1 = silu(%y) : f32[n, 8]
    %a_b_c = gelu(%y_1) : f32[n, 8]
    %1 = reshape(%a_b_c) : f32[n, 1, 8]
    %2 = state() {ref = @"a b"} : f32[4, 1, 8]
    %3 = kv_write(%2, %1, %arg1) : f32[4, 1, 8]
    return %a_b_c, %3
  }
}
)");
  auto back = parse(text);
  EXPECT_THAT(verify(*back), ::testing::IsEmpty());
  EXPECT_EQ(print_module(*back), text);
  EXPECT_EQ(back->attrs, m.attrs);
  ASSERT_EQ(back->weights.size(), 1u);
  EXPECT_EQ(back->weights[0].name, "blk.0.w");
  EXPECT_EQ(back->weights[0].type, m.weights[0].type);
  EXPECT_EQ(back->weights[0].attrs, m.weights[0].attrs);
  EXPECT_EQ(back->states[0].name, "a b");
  Function& g = *back->functions[0];
  ASSERT_EQ(g.ops.size(), f.ops.size());
  for (auto i = f.ops.begin(), j = g.ops.begin(); i != f.ops.end(); ++i, ++j) {
    EXPECT_EQ((*i)->op_name(), (*j)->op_name());
    EXPECT_EQ((*i)->type, (*j)->type);
    EXPECT_EQ((*i)->attrs, (*j)->attrs);
    EXPECT_EQ((*i)->num_operands(), (*j)->num_operands());
  }
}

TEST(IrPrinter, PrintsUndefinedOperandsForDebugging) {
  Module m;
  m.name = "m";
  Function& f = *m.add_function("f");
  Value* x = f.add_arg("x", {DType::F32, {4}});
  Builder b(m, f);
  Op* a = b.create("silu", {x});
  Op* c = b.create("silu", {a});
  f.ops.splice(f.ops.begin(), f.ops, std::prev(f.ops.end()));  // use before def
  f.results = {c};
  EXPECT_EQ(print_module(m), "module @m {\n  func @f(%x: f32[4]) -> (f32[4]) {\n    %0 = silu(%<undefined>) : f32[4]\n"
                             "    %1 = silu(%x) : f32[4]\n    return %0\n  }\n}\n");
}

TEST(IrParser, ReadsFiles) {
  std::string path = ::testing::TempDir() + "/ir_parser_test.nir";
  {
    std::ofstream out(path, std::ios::binary);
    out << kShapes;
  }
  EXPECT_EQ(print_module(*parse_module_file(path)), kShapes);
  EXPECT_EQ(testing::error_of([&] { parse_module_file(path + ".missing"); }), path + ".missing: cannot open");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace nibble
