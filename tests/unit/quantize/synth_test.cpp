// Synthetic models: the tiny preset loads and runs 256 tokens with sane logits, the output is a pure
// function of the seed (whatever the thread count), the generated vocabulary tokenizes and round-trips
// text, and the big presets have llama-quantize's sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>

#include "frontends/gguf/gguf.h"
#include "frontends/llama/hparams.h"
#include "frontends/quantize/quantize.h"
#include "frontends/synth/synth.h"
#include "frontends/synth/vocab_gen.h"
#include "frontends/synth/weights.h"
#include "frontends/tokenizer/tokenizer.h"
#include "quant_test_util.h"

namespace nibble::synth {
namespace {

using testing::expect_error;
using testing::read_bytes;
using testing::TempDir;

SynthOptions tiny(const std::string& type, uint64_t seed = 7, int threads = 2) {
  SynthOptions o;
  o.preset = "tiny";
  o.type = type;
  o.seed = seed;
  o.threads = threads;
  return o;
}

std::string write(const TempDir& dir, const std::string& name, const SynthOptions& o) {
  const std::string path = dir.file(name);
  write_synth(plan_synth(o), o, path);
  return path;
}

TEST(Synth, TinyLoadsAndRuns256TokensSanely) {
  TempDir dir;
  for (const char* type : {"q4_k_m", "f32"}) {
    const std::string path = write(dir, std::string("tiny-") + type + ".gguf", tiny(type));
    auto f = gguf::File::open(path);
    LlamaHParams hp = read_llama_hparams(*f);
    EXPECT_EQ(hp.n_vocab, 1024);
    EXPECT_EQ(hp.n_embd, 256);
    EXPECT_EQ(hp.n_ff, 768);
    EXPECT_EQ(hp.n_layer, 2);
    EXPECT_EQ(hp.n_head, 8);
    EXPECT_EQ(hp.n_head_kv, 4);
    EXPECT_EQ(f->get_string("general.architecture"), "llama");

    auto m = testing::load_ref_module(path, 256);
    Interpreter interp(*m);
    std::vector<int32_t> tokens(256), pos(256);
    uint64_t s = 1;
    for (int i = 0; i < 256; ++i) {
      s = mix64(s + uint64_t(i));
      tokens[size_t(i)] = i == 0 ? 1 : int32_t(3 + s % 1021);
      pos[size_t(i)] = i;
    }
    std::vector<float> logits = interp.forward(tokens, pos);
    ASSERT_EQ(logits.size(), size_t(256 * 1024));
    double sum = 0, sum2 = 0, max_abs = 0;
    for (float v : logits) {
      ASSERT_TRUE(std::isfinite(v));
      sum += v;
      sum2 += double(v) * v;
      max_abs = std::max(max_abs, double(std::fabs(v)));
    }
    const double mean = sum / double(logits.size());
    const double sd = std::sqrt(sum2 / double(logits.size()) - mean * mean);
    // Output weights of std 3/sqrt(n_embd) over a unit-RMS final norm: logits of std about 3.
    EXPECT_GT(sd, 1.0) << type;
    EXPECT_LT(sd, 8.0) << type;
    EXPECT_LT(max_abs, 40.0) << type;
    // The last position still depends on its input (activations did not collapse or saturate).
    std::vector<float> row_a(logits.end() - 1024, logits.end());
    interp.reset_state();
    tokens[255] = tokens[255] == 5 ? 6 : 5;
    std::vector<float> logits_b = interp.forward(tokens, pos);
    std::vector<float> row_b(logits_b.end() - 1024, logits_b.end());
    EXPECT_NE(row_a, row_b) << type;
  }
}

TEST(Synth, DeterministicPerSeedWhateverTheThreads) {
  TempDir dir;
  auto a = read_bytes(write(dir, "a.gguf", tiny("q4_k_m", 42, 1)));
  auto b = read_bytes(write(dir, "b.gguf", tiny("q4_k_m", 42, 2)));
  auto c = read_bytes(write(dir, "c.gguf", tiny("q4_k_m", 43, 2)));
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a.size(), c.size());
  EXPECT_FALSE(a == c);
}

TEST(Synth, MixAndMetadata) {
  TempDir dir;
  const std::string path = write(dir, "t.gguf", tiny("q4_k_m"));
  auto f = gguf::File::open(path);
  EXPECT_EQ(f->get_int("general.file_type"), 15);
  EXPECT_EQ(f->get_int("llama.context_length"), 512);
  EXPECT_EQ(f->get_int("llama.rope.dimension_count"), 32);
  EXPECT_EQ(f->get_int("llama.vocab_size"), 1024);
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f->tensors().size(), size_t(3 + 2 * 9));
  // 2 layers: use_more_bits gives q6_k to attn_v and ffn_down of the last one (i >= 7 * 2 / 8).
  EXPECT_EQ(f->tensor("output.weight").dtype, DType::Q6_K);
  EXPECT_EQ(f->tensor("token_embd.weight").dtype, DType::Q4_K);
  EXPECT_EQ(f->tensor("blk.0.attn_v.weight").dtype, DType::Q4_K);
  EXPECT_EQ(f->tensor("blk.0.ffn_down.weight").dtype, DType::Q4_K);
  EXPECT_EQ(f->tensor("blk.1.attn_v.weight").dtype, DType::Q6_K);
  EXPECT_EQ(f->tensor("blk.1.ffn_down.weight").dtype, DType::Q6_K);
  EXPECT_EQ(f->tensor("blk.1.attn_q.weight").dtype, DType::Q4_K);
  EXPECT_EQ(f->tensor("blk.1.ffn_norm.weight").dtype, DType::F32);
  // The f32 weights have the recipe's scales.
  const std::string p32 = write(dir, "f.gguf", tiny("f32"));
  auto g = gguf::File::open(p32);
  auto stats = [&](const std::string& name) {
    const gguf::TensorInfo& t = g->tensor(name);
    const float* v = reinterpret_cast<const float*>(t.data);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < t.n_elements(); ++i) s += v[i], s2 += double(v[i]) * v[i];
    double mean = s / double(t.n_elements());
    return std::pair<double, double>(mean, std::sqrt(s2 / double(t.n_elements()) - mean * mean));
  };
  EXPECT_NEAR(stats("token_embd.weight").second, 1.0, 0.02);
  EXPECT_NEAR(stats("blk.0.attn_q.weight").second, 1 / 16.0, 0.002);
  EXPECT_NEAR(stats("blk.0.ffn_down.weight").second, 1 / std::sqrt(768.0), 0.002);
  EXPECT_NEAR(stats("output.weight").second, 3 / 16.0, 0.005);
  EXPECT_NEAR(stats("blk.1.attn_norm.weight").first, 1.0, 0.02);
  EXPECT_NEAR(stats("blk.1.attn_norm.weight").second, 0.1, 0.02);
  EXPECT_NEAR(stats("blk.0.attn_k.weight").first, 0.0, 0.002);
}

// Synthesizing straight to a type encodes the same rows quantize would: same tensors as f32 + quantize.
TEST(Synth, EqualsF32ThenQuantize) {
  TempDir dir;
  const std::string f32 = write(dir, "f32.gguf", tiny("f32", 11));
  const std::string direct = write(dir, "direct.gguf", tiny("q3_k_m", 11));
  quant::QuantizeOptions q;
  q.type = "q3_k_m";
  auto src = gguf::File::open(f32);
  quant::write_quantized(*src, quant::plan_quantize(*src, q), dir.file("via.gguf"), q);
  auto a = gguf::File::open(direct);
  auto b = gguf::File::open(dir.file("via.gguf"));
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (size_t i = 0; i < a->tensors().size(); ++i) {
    const gguf::TensorInfo& x = a->tensors()[i];
    const gguf::TensorInfo& y = b->tensors()[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.dtype, y.dtype) << x.name;
    ASSERT_EQ(x.nbytes, y.nbytes) << x.name;
    EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes), 0) << x.name;
  }
  EXPECT_EQ(b->get_int("general.file_type"), 12);
}

TEST(Synth, TokenizerRoundTrips) {
  TempDir dir;
  auto f = gguf::File::open(write(dir, "t.gguf", tiny("q8_0")));
  auto tok = Tokenizer::create(vocab_from_gguf(*f));
  EXPECT_EQ(tok->n_vocab(), 1024);
  for (std::string text : {"hello", "Hello world, once upon a time there was a little dog.", "  two  spaces\tand\ttabs\n",
                           "Zorg the dragon said: \"1234!\"", "caf\xC3\xA9 \xE2\x9C\x93 \xF0\x9F\x98\x80 na\xC3\xAFve", ""}) {
    std::vector<int32_t> ids = tok->encode(text, false, false);
    EXPECT_EQ(tok->decode(ids), text);
    for (int32_t id : ids) EXPECT_GE(id, 3) << "no special tokens in plain text";
  }
  // Common words are single tokens; BOS comes first with add_special.
  std::vector<int32_t> ids = tok->encode("hello the", true, false);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(tok->token_to_piece(ids[1]), " hello");
  EXPECT_EQ(tok->token_to_piece(ids[2]), " the");
}

TEST(Vocab, ShapeAndReachability) {
  for (int64_t n : {kMinVocab, int64_t(1024), int64_t(32000)}) {
    SpmVocab v = make_spm_vocab(n);
    ASSERT_EQ(int64_t(v.tokens.size()), n);
    ASSERT_EQ(v.scores.size(), v.tokens.size());
    ASSERT_EQ(v.types.size(), v.tokens.size());
    EXPECT_EQ(v.tokens[0], "<unk>");
    EXPECT_EQ(v.types[0], 2);
    EXPECT_EQ(v.tokens[1], "<s>");
    EXPECT_EQ(v.tokens[2], "</s>");
    EXPECT_EQ(v.types[2], 3);
    EXPECT_EQ(v.tokens[3], "<0x00>");
    EXPECT_EQ(v.tokens[3 + 0x0A], "<0x0A>");
    EXPECT_EQ(v.tokens[258], "<0xFF>");
    EXPECT_EQ(v.types[258], 6);
    EXPECT_EQ(v.tokens[259], "\xE2\x96\x81");
    std::set<std::string> all(v.tokens.begin(), v.tokens.end());
    EXPECT_EQ(all.size(), v.tokens.size()) << "duplicate tokens";
    float prev = 1;
    for (size_t i = 259; i < v.tokens.size(); ++i) {
      EXPECT_EQ(v.types[i], 1);
      EXPECT_LT(v.scores[i], prev) << "scores decrease";
      prev = v.scores[i];
      // Every multi-character piece is a shorter piece plus one character: the merges reach it.
      const std::string& t = v.tokens[i];
      size_t last = t.size() - 1;
      while (last > 0 && (static_cast<unsigned char>(t[last]) & 0xC0) == 0x80) --last;
      if (last > 0) {
        EXPECT_TRUE(all.count(t.substr(0, last))) << t;
        EXPECT_TRUE(all.count(t.substr(last))) << t;
      }
    }
  }
  EXPECT_EQ(make_spm_vocab(32000).tokens, make_spm_vocab(32000).tokens);
  expect_error([] { make_spm_vocab(100); }, "out of range");
}

TEST(Synth, PresetSizesMatchLlamaQuantize) {
  // docs/baselines.md: TinyLlama-1.1B shapes, q4_0 607 MiB and q4_k_m 636 MiB files.
  SynthOptions o;
  o.preset = "tinyllama-1.1b";
  o.type = "q4_0";
  SynthPlan q40 = plan_synth(o);
  EXPECT_NEAR(double(q40.bytes()) / (1 << 20), 606.5, 1.0);
  EXPECT_EQ(q40.n_params(), int64_t(1100048384));
  o.type = "q4_k_m";
  EXPECT_NEAR(double(plan_synth(o).bytes()) / (1 << 20), 636.2, 1.0);
  o.preset = "llama-7b";
  o.type = "q4_0";
  SynthPlan l7 = plan_synth(o);
  EXPECT_EQ(l7.n_params(), int64_t(6738415616));
  EXPECT_EQ(l7.preset.n_head_kv, 32);
}

TEST(Synth, Errors) {
  SynthOptions o = tiny("q4_k_m");
  o.arch = "gpt2";
  expect_error([&] { plan_synth(o); }, "unsupported architecture 'gpt2'");
  o = tiny("q4_k_m");
  o.preset = "huge";
  expect_error([&] { plan_synth(o); }, "unknown preset 'huge'");
  expect_error([&] { plan_synth(tiny("q4_k_x")); }, "unknown type 'q4_k_x'");
  o = tiny("q4_k_m");
  o.tensor_types = {"nope"};
  expect_error([&] { plan_synth(o); }, "expected PATTERN=TYPE");
}

TEST(Rng, CounterBasedNormal) {
  CounterRng a(1, "x"), b(1, "x"), c(2, "x"), d(1, "y");
  EXPECT_EQ(a.bits(5), b.bits(5));
  EXPECT_NE(a.bits(5), c.bits(5));
  EXPECT_NE(a.bits(5), d.bits(5));
  double s = 0, s2 = 0;
  const int n = 1 << 20;
  for (int i = 0; i < n; ++i) {
    double v = a.normal(uint64_t(i));
    s += v;
    s2 += v * v;
  }
  EXPECT_NEAR(s / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.01);
}

}  // namespace
}  // namespace nibble::synth
