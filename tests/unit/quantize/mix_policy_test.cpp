// The mix policy on its own: names, overrides, llama.cpp's tensor order, the per-tensor choices of the
// README's type tables (synth-256, synth-qwen2, stories260K) and TinyLlama shapes, and the fallbacks.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "frontends/quantize/mix_policy.h"
#include "quant_test_util.h"

namespace nibble::quant {
namespace {

using testing::expect_error;

struct Model {
  ModelShape shape;
  std::vector<std::pair<std::string, std::vector<int64_t>>> tensors;  // llama.cpp order
};

// A llama-family model's tensors (names and GGML shapes), in llama.cpp's order.
Model llama_model(int n_layer, int64_t n_embd, int64_t n_ff, int n_head, int n_head_kv, int64_t n_vocab,
                  bool tied = false, std::string arch = "llama") {
  Model m;
  const int64_t kv = n_embd / n_head * n_head_kv;
  m.tensors.push_back({"token_embd.weight", {n_embd, n_vocab}});
  m.tensors.push_back({"output_norm.weight", {n_embd}});
  if (!tied) m.tensors.push_back({"output.weight", {n_embd, n_vocab}});
  for (int l = 0; l < n_layer; ++l) {
    auto b = fmt::format("blk.{}.", l);
    m.tensors.push_back({b + "attn_norm.weight", {n_embd}});
    m.tensors.push_back({b + "attn_q.weight", {n_embd, n_embd}});
    m.tensors.push_back({b + "attn_k.weight", {n_embd, kv}});
    m.tensors.push_back({b + "attn_v.weight", {n_embd, kv}});
    m.tensors.push_back({b + "attn_output.weight", {n_embd, n_embd}});
    m.tensors.push_back({b + "ffn_norm.weight", {n_embd}});
    m.tensors.push_back({b + "ffn_gate.weight", {n_embd, n_ff}});
    m.tensors.push_back({b + "ffn_up.weight", {n_embd, n_ff}});
    m.tensors.push_back({b + "ffn_down.weight", {n_ff, n_embd}});
  }
  std::stable_sort(m.tensors.begin(), m.tensors.end(),
                   [](const auto& a, const auto& b) { return tensor_order_less(a.first, b.first); });
  m.shape.arch = std::move(arch);
  m.shape.n_layer = n_layer;
  m.shape.n_head = n_head;
  m.shape.n_head_kv = n_head_kv;
  std::vector<std::string> names;
  for (const auto& t : m.tensors) names.push_back(t.first);
  count_tensors(m.shape, names);
  return m;
}

// name -> chosen type name ("" for tensors that are not quantized).
std::map<std::string, std::string> choose_all(const Model& m, const std::string& type, bool pure = false,
                                              std::vector<TypeOverride> overrides = {}) {
  MixPolicy p(m.shape, *parse_target(type), pure, std::move(overrides));
  std::map<std::string, std::string> r;
  for (const auto& [name, ne] : m.tensors)
    r[name] = is_quantizable(name, ne) ? dtype_name(p.choose(name, ne).type) : "";
  return r;
}

Model synth256() { return llama_model(4, 256, 768, 8, 4, 512); }

// Expected type per tensor role and layer.
std::string expect_role(const std::map<std::string, std::string>& got, const std::string& role, int layer) {
  auto it = got.find(fmt::format("blk.{}.{}.weight", layer, role));
  return it == got.end() ? "<missing>" : it->second;
}

TEST(Targets, NamesAliasesAndFileTypes) {
  EXPECT_EQ(parse_target("Q4_K_M")->ftype, FileType::Q4_K_M);
  EXPECT_EQ(parse_target("q4_k_m")->base, DType::Q4_K);
  EXPECT_EQ(parse_target("q4_k")->name, "q4_k_m");  // llama-quantize's alias
  EXPECT_EQ(parse_target("q3_k")->name, "q3_k_m");
  EXPECT_EQ(parse_target("q5_k")->name, "q5_k_m");
  EXPECT_EQ(static_cast<uint32_t>(parse_target("q8_0")->ftype), 7u);
  EXPECT_EQ(static_cast<uint32_t>(parse_target("q5_0")->ftype), 8u);
  EXPECT_EQ(static_cast<uint32_t>(parse_target("q6_k")->ftype), 18u);
  EXPECT_EQ(static_cast<uint32_t>(parse_target("bf16")->ftype), 32u);
  EXPECT_EQ(static_cast<uint32_t>(parse_target("f32")->ftype), 0u);
  EXPECT_EQ(parse_target("q2_k")->base, DType::Q2_K);
  EXPECT_FALSE(parse_target("q9_k"));
  EXPECT_FALSE(parse_target("iq4_xs"));
  EXPECT_FALSE(parse_target(""));
  for (const char* n : {"f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k_s", "q3_k_m",
                        "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k", "q3_k", "q4_k", "q5_k"}) {
    EXPECT_TRUE(parse_target(n)) << n;
    EXPECT_NE(target_names().find(n), std::string::npos) << n;
  }
}

TEST(Overrides, Parse) {
  TypeOverride o = parse_override("attn_v=q8_0");
  EXPECT_EQ(o.pattern, "attn_v");
  EXPECT_EQ(o.type, DType::Q8_0);
  EXPECT_EQ(parse_override("blk\\.(0|1)\\.ffn_down=Q6_K").type, DType::Q6_K);
  EXPECT_EQ(parse_override("a=b=f16").pattern, "a=b");  // the last '=' separates the type
  expect_error([] { parse_override("attn_v"); }, "expected PATTERN=TYPE");
  expect_error([] { parse_override("=q8_0"); }, "expected PATTERN=TYPE");
  expect_error([] { parse_override("attn_v="); }, "expected PATTERN=TYPE");
  expect_error([] { parse_override("attn_v=q9_0"); }, "unknown type 'q9_0'");
  expect_error([] { parse_override("attn_v=q4_k_m"); }, "unknown type 'q4_k_m'");  // formats only, no mixes
  expect_error([] { parse_override("attn_v=q8_1"); }, "unknown type");             // not a weight format
  expect_error([] { parse_override("blk.(0=q8_0"); }, "bad pattern 'blk.(0'");
}

TEST(Order, LikeLlamaCpp) {
  std::vector<std::string> names = {"token_embd.weight", "blk.10.attn_q.weight", "blk.2.ffn_down.weight",
                                    "output.weight",     "blk.2.attn_k.weight",  "output_norm.weight"};
  std::sort(names.begin(), names.end(), tensor_order_less);
  EXPECT_EQ(names, (std::vector<std::string>{"output.weight", "output_norm.weight", "token_embd.weight",
                                             "blk.2.attn_k.weight", "blk.2.ffn_down.weight",
                                             "blk.10.attn_q.weight"}));
}

TEST(Quantizable, WeightsOfTwoDimensions) {
  EXPECT_TRUE(is_quantizable("blk.0.attn_q.weight", {256, 256}));
  EXPECT_TRUE(is_quantizable("token_embd.weight", {64, 512}));
  EXPECT_FALSE(is_quantizable("blk.0.attn_norm.weight", {256}));
  EXPECT_FALSE(is_quantizable("blk.0.attn_q.bias", {256}));
  EXPECT_FALSE(is_quantizable("blk.0.attn_q.weight", {256, 1}));  // trailing 1s do not count
  EXPECT_FALSE(is_quantizable("blk.0.ffn_gate_inp.weight", {256, 8}));
  EXPECT_FALSE(is_quantizable("blk.0.attn_norm.weight", {256, 2}));
  EXPECT_FALSE(is_quantizable("rope_freqs", {64, 2}));
}

// README §4's table for synth-256 (4 layers, GQA 2).
TEST(Mix, Synth256Q2K) {
  auto got = choose_all(synth256(), "q2_k");
  EXPECT_EQ(got["output.weight"], "q6_k");
  EXPECT_EQ(got["token_embd.weight"], "q2_k");
  EXPECT_EQ(got["output_norm.weight"], "");
  for (int l = 0; l < 4; ++l) {
    for (const char* r : {"attn_q", "attn_k", "ffn_gate", "ffn_up"}) EXPECT_EQ(expect_role(got, r, l), "q2_k") << r;
    for (const char* r : {"attn_v", "attn_output", "ffn_down"}) EXPECT_EQ(expect_role(got, r, l), "q3_k") << r;
  }
}

TEST(Mix, Synth256Q3KM) {
  auto got = choose_all(synth256(), "q3_k_m");
  EXPECT_EQ(got["output.weight"], "q6_k");
  EXPECT_EQ(got["token_embd.weight"], "q3_k");
  for (int l = 0; l < 4; ++l) {
    for (const char* r : {"attn_q", "attn_k", "ffn_gate", "ffn_up"}) EXPECT_EQ(expect_role(got, r, l), "q3_k") << r;
    EXPECT_EQ(expect_role(got, "attn_output", l), "q4_k");
    EXPECT_EQ(expect_role(got, "ffn_down", l), "q4_k");
    EXPECT_EQ(expect_role(got, "attn_v", l), l < 2 ? "q5_k" : "q4_k");
  }
}

TEST(Mix, Synth256Q4KMAndQ5KM) {
  for (const auto& [type, base] : {std::pair<std::string, std::string>{"q4_k_m", "q4_k"}, {"q5_k_m", "q5_k"}}) {
    auto got = choose_all(synth256(), type);
    EXPECT_EQ(got["output.weight"], "q6_k");
    EXPECT_EQ(got["token_embd.weight"], base);
    for (int l = 0; l < 4; ++l) {
      for (const char* r : {"attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"})
        EXPECT_EQ(expect_role(got, r, l), base) << type << " " << r;
      EXPECT_EQ(expect_role(got, "attn_v", l), l >= 2 ? "q6_k" : base) << type;
      EXPECT_EQ(expect_role(got, "ffn_down", l), l >= 2 ? "q6_k" : base) << type;
    }
  }
}

TEST(Mix, Synth256SingleFormats) {
  for (const char* t : {"q4_0", "q4_1", "q5_0", "q5_1"}) {
    auto got = choose_all(synth256(), t);
    for (const auto& [name, type] : got) {
      if (type.empty()) continue;
      EXPECT_EQ(type, name == "output.weight" ? "q6_k" : t) << name;
    }
  }
  for (const char* t : {"q8_0", "q6_k", "f16"})
    for (const auto& [name, type] : choose_all(synth256(), t))
      if (!type.empty()) {
        EXPECT_EQ(type, t) << name;
      }
}

TEST(Mix, PureAndOverrides) {
  for (const auto& [name, type] : choose_all(synth256(), "q4_k_m", true))
    if (!type.empty()) {
      EXPECT_EQ(type, "q4_k") << name;
    }
  auto got = choose_all(synth256(), "q4_k_m", false,
                        {parse_override("attn_v=q8_0"), parse_override("blk\\.0\\.=f16"), parse_override("ffn_up=q5_k")});
  EXPECT_EQ(expect_role(got, "attn_v", 3), "q8_0");
  EXPECT_EQ(expect_role(got, "attn_v", 0), "f16");  // the last match wins
  EXPECT_EQ(expect_role(got, "attn_q", 0), "f16");
  EXPECT_EQ(expect_role(got, "ffn_up", 0), "q5_k");
  EXPECT_EQ(expect_role(got, "ffn_down", 3), "q6_k");  // untouched: the mix
  EXPECT_EQ(got["output.weight"], "q6_k");
}

// README §9: qwen2, tied output (no output.weight), GQA 4, ffn_down rows of 704.
TEST(Mix, Qwen2Q4KMTiedOutputAndFallbacks) {
  Model m = llama_model(3, 256, 704, 8, 2, 512, /*tied=*/true, "qwen2");
  EXPECT_FALSE(m.shape.has_output);
  MixPolicy p(m.shape, *parse_target("q4_k_m"));
  std::map<std::string, TypeChoice> got;
  for (const auto& [name, ne] : m.tensors)
    if (is_quantizable(name, ne)) got[name] = p.choose(name, ne);
  EXPECT_EQ(got["token_embd.weight"].type, DType::Q6_K);  // gets the output's type
  EXPECT_EQ(got["blk.0.attn_v.weight"].type, DType::Q4_K);
  EXPECT_EQ(got["blk.1.attn_v.weight"].type, DType::Q4_K);
  EXPECT_EQ(got["blk.2.attn_v.weight"].type, DType::Q6_K);
  for (int l = 0; l < 3; ++l) {
    const TypeChoice& c = got[fmt::format("blk.{}.ffn_down.weight", l)];
    EXPECT_TRUE(c.fallback);
    EXPECT_EQ(c.wanted, l < 2 ? DType::Q4_K : DType::Q6_K);
    EXPECT_EQ(c.type, l < 2 ? DType::Q5_0 : DType::Q8_0);
    EXPECT_NE(c.note.find("704 columns are not a multiple of"), std::string::npos) << c.note;
  }
  EXPECT_EQ(p.n_fallback(), 3);  // "3 of 22 tensor(s) required fallback quantization"
  EXPECT_EQ(p.n_fallback() + p.n_fitting(), 22);
}

// README §2: stories260K (dim 64, n_ff 172, 5 layers): no K-quant tensor survives.
TEST(Mix, Stories260KQ4KMFallbacks) {
  Model m = llama_model(5, 64, 172, 8, 4, 512);
  auto got = choose_all(m, "q4_k_m");
  std::map<std::string, int> count;
  for (const auto& [name, type] : got)
    if (!type.empty()) ++count[type];
  EXPECT_EQ(count["q5_0"], 29);
  EXPECT_EQ(count["q8_0"], 3);
  EXPECT_EQ(count["f16"], 5);
  EXPECT_EQ(got["output.weight"], "q8_0");
  EXPECT_EQ(expect_role(got, "attn_v", 2), "q8_0");
  EXPECT_EQ(expect_role(got, "attn_v", 4), "q8_0");
  for (int l = 0; l < 5; ++l) EXPECT_EQ(expect_role(got, "ffn_down", l), "f16");
}

// TinyLlama shapes (22 layers, GQA 8): attn_v and ffn_down get q6_k where use_more_bits says so.
TEST(Mix, TinyLlamaQ4KM) {
  auto got = choose_all(llama_model(22, 2048, 5632, 32, 4, 32000), "q4_k_m");
  const std::set<int> more = {0, 1, 4, 7, 10, 13, 16, 19, 20, 21};
  for (int l = 0; l < 22; ++l) {
    const char* want = more.count(l) ? "q6_k" : "q4_k";
    EXPECT_EQ(expect_role(got, "attn_v", l), want) << l;
    EXPECT_EQ(expect_role(got, "ffn_down", l), want) << l;
    EXPECT_EQ(expect_role(got, "attn_q", l), "q4_k");
  }
  // q2_k with GQA >= 4 gives attn_v q4_k.
  EXPECT_EQ(expect_role(choose_all(llama_model(22, 2048, 5632, 32, 4, 32000), "q2_k"), "attn_v", 5), "q4_k");
}

TEST(Mix, SmallAndLargeKMixes) {
  Model m = llama_model(32, 4096, 11008, 32, 32, 32000);
  auto s = choose_all(m, "q4_k_s");
  EXPECT_EQ(expect_role(s, "attn_v", 3), "q5_k");
  EXPECT_EQ(expect_role(s, "attn_v", 4), "q4_k");
  EXPECT_EQ(expect_role(s, "ffn_down", 3), "q5_k");  // i < n/8 = 4
  EXPECT_EQ(expect_role(s, "ffn_down", 4), "q4_k");
  auto l = choose_all(m, "q3_k_l");
  EXPECT_EQ(expect_role(l, "attn_v", 10), "q5_k");
  EXPECT_EQ(expect_role(l, "ffn_down", 10), "q5_k");
  EXPECT_EQ(expect_role(l, "attn_output", 10), "q5_k");
  auto m3 = choose_all(m, "q3_k_m");
  EXPECT_EQ(expect_role(m3, "ffn_down", 1), "q5_k");  // i < n/16 = 2
  EXPECT_EQ(expect_role(m3, "ffn_down", 2), "q4_k");
  for (const auto& [name, type] : choose_all(m, "q5_k_s"))
    if (!type.empty()) {
      EXPECT_EQ(type, name == "output.weight" ? "q6_k" : "q5_k") << name;
    }
  // 70B (80 layers, GQA): attn_v q4_k -> q5_k where use_more_bits does not already give q6_k.
  Model big = llama_model(80, 8192, 28672, 64, 8, 32000);
  big.shape.is_70b = true;
  auto b = choose_all(big, "q4_k_m");
  EXPECT_EQ(expect_role(b, "attn_v", 11), "q5_k");
  EXPECT_EQ(expect_role(b, "attn_v", 12), "q6_k");
}

TEST(Fallback, Table) {
  std::string why;
  EXPECT_EQ(fallback_type(DType::Q4_K, 64, &why), DType::Q5_0);
  EXPECT_NE(why.find("64 columns are not a multiple of q4_k's block of 256"), std::string::npos) << why;
  EXPECT_EQ(fallback_type(DType::Q5_K, 64, nullptr), DType::Q5_1);
  EXPECT_EQ(fallback_type(DType::Q6_K, 64, nullptr), DType::Q8_0);
  EXPECT_EQ(fallback_type(DType::Q2_K, 64, &why), DType::Q4_0);  // llama.cpp: iq4_nl
  EXPECT_NE(why.find("iq4_nl"), std::string::npos) << why;
  EXPECT_EQ(fallback_type(DType::Q3_K, 96, nullptr), DType::Q4_0);
  // Rows that fit no 32-block either: f16.
  EXPECT_EQ(fallback_type(DType::Q4_K, 172, nullptr), DType::F16);
  EXPECT_EQ(fallback_type(DType::Q6_K, 704 + 16, nullptr), DType::F16);
  EXPECT_EQ(fallback_type(DType::Q8_0, 172, &why), DType::F16);  // llama-quantize gives up here
  EXPECT_NE(why.find("refuses"), std::string::npos) << why;
  EXPECT_EQ(fallback_type(DType::Q4_0, 48, nullptr), DType::F16);
}

TEST(Fallback, AppliesToOverridesAndPure) {
  Model m = llama_model(2, 64, 172, 8, 4, 512);
  MixPolicy pure(m.shape, *parse_target("q6_k"), true);
  TypeChoice c = pure.choose("blk.0.ffn_down.weight", {172, 64});
  EXPECT_TRUE(c.fallback);
  EXPECT_EQ(c.type, DType::F16);
  MixPolicy over(m.shape, *parse_target("f16"), false, {parse_override("attn_q=q4_k")});
  c = over.choose("blk.0.attn_q.weight", {64, 64});
  EXPECT_TRUE(c.overridden);
  EXPECT_TRUE(c.fallback);
  EXPECT_EQ(c.wanted, DType::Q4_K);
  EXPECT_EQ(c.type, DType::Q5_0);
  EXPECT_EQ(over.choose("blk.0.attn_k.weight", {64, 32}).type, DType::F16);  // f16 target: no mix
}

}  // namespace
}  // namespace nibble::quant
