// The builder: every op's result type is inferred by its type rule; bad ops are rejected.
#include <algorithm>
#include <iterator>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ir/builder.h"
#include "ir/op_registry.h"
#include "ir_test_util.h"

namespace nibble {
namespace {

using ::testing::HasSubstr;
using testing::error_of;

Attrs attrs(std::initializer_list<std::pair<const char*, Attribute>> kv) {
  Attrs a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

class IrBuilder : public ::testing::Test {
 protected:
  IrBuilder() : f(*m.add_function("main")), b(m, f) {
    m.name = "m";
    n = Dim::sym("n");
    x = f.add_arg("x", {DType::F32, {n, 64}});
    pos = f.add_arg("pos", {DType::I32, {n}});
  }
  Module m;
  Function& f;
  Builder b;
  Dim n;
  Value* x;
  Value* pos;
};

TEST_F(IrBuilder, InfersTheTypeOfEveryOp) {
  b.declare_weight("wq", {DType::Q4_K, {128, 256}});
  b.declare_weight("w16", {DType::F16, {64, 64}});
  b.declare_weight("emb", {DType::Q8_0, {1000, 64}});
  b.declare_weight("norm", {DType::F32, {64}});
  b.declare_state("kc", {DType::F16, {32, 2, 16}});
  std::vector<std::string> seen;
  auto check = [&](Op* op, const std::string& type) {
    EXPECT_EQ(op->type.str(), type) << op->op_name();
    seen.push_back(op->op_name());
  };

  Value* ids = f.add_arg("ids", {DType::I32, {n}});
  Value* a256 = f.add_arg("a256", {DType::F32, {n, 256}});
  check(b.weight("wq"), "q4_k[128, 256]");
  check(b.state("kc"), "f16[32, 2, 16]");
  check(b.create("embedding", {b.weight("emb"), ids}), "f32[n, 64]");
  check(b.dequant(b.weight("w16")), "f32[64, 64]");
  check(b.matmul(x, b.weight("w16"), false), "f32[n, 64]");
  check(b.create("qmatmul", {a256, b.weight("wq")}), "f32[n, 128]");
  check(b.create_typed("quantize", {a256}, {DType::Q8_K, {n, 256}}), "q8_k[n, 256]");
  check(b.add(x, b.weight("norm")), "f32[n, 64]");
  check(b.mul(x, x), "f32[n, 64]");
  check(b.create("silu", {x}), "f32[n, 64]");
  check(b.create("gelu", {x}), "f32[n, 64]");
  check(b.create("swiglu", {x, x}), "f32[n, 64]");
  check(b.rms_norm(x, 1e-5), "f32[n, 64]");
  check(b.create("layer_norm", {x, b.weight("norm"), b.weight("norm")}, attrs({{"eps", 1e-6}})), "f32[n, 64]");
  check(b.create("softmax", {x}, attrs({{"scale", 0.125}})), "f32[n, 64]");
  Op* heads = b.reshape(x, {n, 4, 16});
  check(heads, "f32[n, 4, 16]");
  check(b.create("rope", {heads, pos},
                 attrs({{"mode", std::string("neox")}, {"n_dims", int64_t(16)}, {"freq_base", 10000.0}})),
        "f32[n, 4, 16]");
  Op* kv = b.create("view", {heads}, attrs({{"axis", int64_t(1)}, {"offset", int64_t(0)}, {"size", int64_t(2)}}));
  check(kv, "f32[n, 2, 16]");
  Op* kc = b.create("kv_write", {b.state("kc"), kv, pos});
  check(kc, "f16[32, 2, 16]");
  check(b.create("attention", {heads, kc, kc, pos}, attrs({{"scale", 0.25}})), "f32[n, 4, 16]");
  check(b.create("permute", {heads}, attrs({{"perm", std::vector<int64_t>{1, 0, 2}}})), "f32[4, n, 16]");
  check(b.create("concat", {heads, kv, kv}, attrs({{"axis", int64_t(1)}})), "f32[n, 8, 16]");
  check(b.create("argmax", {x}), "i32[n]");

  // Every registered op was built once.
  std::vector<std::string> all;
  for (const OpDef* d : all_ops()) all.push_back(d->name);
  std::sort(all.begin(), all.end());
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  std::vector<std::string> untested;
  std::set_difference(all.begin(), all.end(), seen.begin(), seen.end(), std::back_inserter(untested));
  EXPECT_THAT(untested, ::testing::IsEmpty()) << "ops without a builder test here";
  f.results = {x};
  EXPECT_THAT(verify(m), ::testing::IsEmpty());
}

TEST_F(IrBuilder, RejectsBadOps) {
  EXPECT_EQ(error_of([&] { b.create("nope", {x}); }), "builder: unknown op 'nope'");
  EXPECT_EQ(error_of([&] { b.create("silu", {x, x}); }), "builder: op 'silu' takes 1..1 operands, got 2");
  EXPECT_EQ(error_of([&] { b.create("concat", {x}); }), "builder: op 'concat' takes 2..any operands, got 1");
  EXPECT_EQ(error_of([&] { b.add(x, pos); }), "builder: 'add': operand #1 must be f32, got i32[n]");
  EXPECT_EQ(error_of([&] { b.create("reshape", {x}); }), "builder: 'reshape': reshape needs its result type");
  EXPECT_EQ(error_of([&] { b.create("quantize", {x}); }), "builder: 'quantize': quantize needs its result type");
  EXPECT_EQ(error_of([&] { b.create_typed("silu", {x}, {DType::F32, {n, 63}}); }),
            "builder: 'silu': declared type f32[n, 63] but the op gives f32[n, 64]");
  EXPECT_EQ(error_of([&] { b.reshape(x, {n, 65}); }),
            "builder: 'reshape': f32[n, 64] and f32[n, 65] have different element counts");
  EXPECT_EQ(error_of([&] { b.weight("missing"); }), "builder: 'weight': unknown weight @missing");
  EXPECT_EQ(error_of([&] { b.state("missing"); }), "builder: 'state': unknown state @missing");
  b.declare_weight("w", {DType::F32, {4}});
  b.declare_state("s", {DType::F32, {4}});
  EXPECT_EQ(error_of([&] { b.declare_weight("w", {DType::F32, {4}}); }), "builder: weight @w declared twice");
  EXPECT_EQ(error_of([&] { b.declare_state("s", {DType::F32, {4}}); }), "builder: state @s declared twice");
  EXPECT_TRUE(f.ops.empty());  // nothing half-built was inserted
}

TEST_F(IrBuilder, InsertionPointAndNames) {
  Op* a = b.create("silu", {x}, {}, "a");
  Op* c = b.create("gelu", {a}, {}, "c");
  b.set_insertion_point(std::prev(f.ops.end()));
  Op* mid = b.create("silu", {a}, {}, "mid");
  std::vector<Op*> order;
  for (auto& op : f.ops) order.push_back(op.get());
  EXPECT_EQ(order, (std::vector<Op*>{a, mid, c}));
  EXPECT_EQ(mid->name, "mid");
  EXPECT_EQ(mid->def, mid);
  EXPECT_FALSE(mid->is_arg());
  EXPECT_TRUE(x->is_arg());
  EXPECT_EQ(pos->arg_index, 1);
  EXPECT_EQ(&b.module(), &m);
  EXPECT_EQ(&b.function(), &f);
}

TEST(IrModule, UsesAndLookups) {
  Module m;
  Function* f = m.add_function("f");
  Builder b(m, *f);
  b.declare_weight("w", {DType::F32, {4}});
  b.declare_state("s", {DType::F32, {4}});
  Value* x = f->add_arg("x", {DType::F32, {4}});
  Op* s1 = b.create("silu", {x});
  Op* s2 = b.create("silu", {x});
  Op* sum = b.add(s1, s1);
  f->results = {sum, s1};
  EXPECT_EQ(f->use_count(x), 2u);
  EXPECT_EQ(f->use_count(s1), 3u);
  EXPECT_EQ(f->use_count(s2), 0u);
  f->replace_all_uses(s1, s2);
  EXPECT_EQ(f->use_count(s1), 0u);
  EXPECT_EQ(f->use_count(s2), 3u);
  EXPECT_EQ(sum->operand(0), s2);
  EXPECT_EQ(f->results[1], s2);
  EXPECT_NE(m.find_weight("w"), nullptr);
  EXPECT_EQ(m.find_weight("s"), nullptr);
  EXPECT_NE(m.find_state("s"), nullptr);
  EXPECT_EQ(static_cast<const Module&>(m).find_weight("w")->name, "w");
  EXPECT_EQ(static_cast<const Module&>(m).find_state("s")->name, "s");
  EXPECT_EQ(m.find_function("f"), f);
  EXPECT_EQ(m.find_function("g"), nullptr);
  EXPECT_TRUE(sum->op_def().elementwise);
  EXPECT_FALSE(sum->has_side_effects());
  EXPECT_EQ(sum->op_name(), "add");
}

TEST(IrOpRegistry, EveryOpIsWellFormed) {
  std::set<std::string> names;
  for (const OpDef* d : all_ops()) {
    SCOPED_TRACE(d->name);
    EXPECT_TRUE(names.insert(d->name).second) << "registered twice";
    EXPECT_EQ(find_op(d->name), d);
    EXPECT_FALSE(d->summary.empty());
    EXPECT_NE(d->infer, nullptr);
    EXPECT_GE(d->min_operands, 0);
    EXPECT_TRUE(d->max_operands == -1 || d->max_operands >= d->min_operands);
  }
  EXPECT_EQ(find_op("nope"), nullptr);
  EXPECT_TRUE(find_op("kv_write")->side_effects);  // DCE and CSE must keep it
  EXPECT_FALSE(find_op("add")->side_effects);
}

TEST(IrOpRegistry, WeightAndStateWithoutModuleKeepTheDeclaredType) {
  // Type rules run without a module in some unit contexts: module refs keep their declared type.
  for (const char* name : {"weight", "state"}) {
    Op op(find_op(name), {}, TensorType(DType::F16, {3}), attrs({{"ref", SymbolRef{"x"}}}));
    EXPECT_EQ(find_op(name)->infer(InferContext{nullptr, op, true}), TensorType(DType::F16, {3}));
    Op bad(find_op(name), {}, TensorType(DType::F16, {3}));
    EXPECT_THROW(find_op(name)->infer(InferContext{nullptr, bad, true}), OpError);
  }
}

}  // namespace
}  // namespace nibble
