// Reads every shared model and vocab file and checks facts verified independently (README tables and a
// separate Python dump of the headers); then checks that Writer::copy_of reproduces each file byte for byte.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "gguf_test_util.h"

namespace nibble::gguf {
namespace {

using test::expect_error;

std::string model(const std::string& name) { return std::string(NIBBLE_SHARED_DIR) + "/models/" + name; }
std::string vocab(const std::string& name) { return std::string(NIBBLE_SHARED_DIR) + "/reference/tokenizer/" + name; }

std::map<DType, int> type_counts(const File& f) {
  std::map<DType, int> r;
  for (const TensorInfo& t : f.tensors()) r[t.dtype]++;
  return r;
}

// Invariants every valid file must satisfy.
void check_layout(const File& f) {
  EXPECT_EQ(f.data_offset() % f.alignment(), 0u);
  for (const TensorInfo& t : f.tensors()) {
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.file_offset, f.data_offset() + t.offset);
    EXPECT_EQ(t.offset % f.alignment(), 0u);
    EXPECT_EQ(t.data, f.bytes() + t.file_offset);
    EXPECT_LE(t.file_offset + t.nbytes, f.size());
    EXPECT_EQ(static_cast<int64_t>(t.nbytes), row_bytes(t.dtype, t.ne[0]) * (t.n_elements() / t.ne[0]));
    EXPECT_EQ(static_cast<int>(t.ggml_type), dtype_info(t.dtype).ggml_type);
  }
}

TEST(GgufModels, Stories260K) {
  auto f = File::open(model("stories260K.gguf"));
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->size(), 1185376u);
  EXPECT_EQ(f->metadata().size(), 19u);
  EXPECT_EQ(f->metadata().front().first, "tokenizer.ggml.tokens");
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f->get_int("llama.embedding_length"), 64);
  EXPECT_EQ(f->get_int("llama.block_count"), 5);
  EXPECT_EQ(f->get_int("llama.context_length"), 2048);
  EXPECT_EQ(f->get_int("llama.feed_forward_length"), 172);
  EXPECT_EQ(f->get_int("llama.attention.head_count"), 8);
  EXPECT_EQ(f->get_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(f->get_int("llama.rope.dimension_count"), 8);
  EXPECT_EQ(f->get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(f->get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(f->get_int("tokenizer.ggml.padding_token_id"), 4294967295);
  EXPECT_FLOAT_EQ(static_cast<float>(f->get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(f->find("llama.attention.layer_norm_rms_epsilon")->type, ValueType::F32);

  const auto& tokens = f->get_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(tokens[0].as_string("tokens"), "<unk>");
  EXPECT_EQ(tokens[1].as_string("tokens"), "<s>");
  EXPECT_EQ(tokens[2].as_string("tokens"), "</s>");
  EXPECT_EQ(f->find("tokenizer.ggml.tokens")->elem_type, ValueType::STRING);
  EXPECT_EQ(f->find("tokenizer.ggml.scores")->elem_type, ValueType::F32);
  EXPECT_EQ(f->get_array("tokenizer.ggml.scores").size(), 512u);
  EXPECT_EQ(f->find("tokenizer.ggml.token_type")->elem_type, ValueType::I32);
  EXPECT_EQ(f->get_array("tokenizer.ggml.token_type").size(), 512u);

  ASSERT_EQ(f->tensors().size(), 48u);
  EXPECT_EQ((type_counts(*f)), (std::map<DType, int>{{DType::F32, 48}}));
  const TensorInfo& emb = f->tensor("token_embd.weight");
  EXPECT_EQ(emb.ne, (std::vector<int64_t>{64, 512}));
  EXPECT_EQ(emb.offset, 0u);
  EXPECT_EQ(emb.nbytes, 64u * 512 * 4);
  EXPECT_EQ(f->tensor("output_norm.weight").ne, (std::vector<int64_t>{64}));
  EXPECT_EQ(f->tensor("blk.4.ffn_up.weight").ne, (std::vector<int64_t>{64, 172}));
  EXPECT_EQ(f->tensor("blk.0.ffn_down.weight").ne, (std::vector<int64_t>{172, 64}));
  EXPECT_EQ(f->tensor("blk.0.attn_k.weight").ne, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(f->find_tensor("blk.5.attn_q.weight"), nullptr);
  for (int l = 0; l < 5; ++l)
    for (const char* n : {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
                          "ffn_down", "ffn_up"})
      EXPECT_NE(f->find_tensor(fmt::format("blk.{}.{}.weight", l, n)), nullptr) << l << n;
  // RMSNorm weights of a trained model: finite and mostly near 1, not garbage from a wrong offset.
  const TensorInfo& norm = f->tensor("output_norm.weight");
  float w[64];
  std::memcpy(w, norm.data, sizeof w);
  for (float x : w) EXPECT_TRUE(std::isfinite(x) && std::fabs(x) < 100) << x;
  check_layout(*f);
}

struct Expect {
  const char* file;
  size_t n_tensors;
  std::map<DType, int> types;
};

TEST(GgufModels, TensorTypesOfEveryModel) {
  using D = DType;
  const Expect cases[] = {
      {"stories260K-f16.gguf", 48, {{D::F16, 37}, {D::F32, 11}}},
      {"stories260K-q8_0.gguf", 48, {{D::Q8_0, 32}, {D::F16, 5}, {D::F32, 11}}},
      {"stories260K-q4_0.gguf", 48, {{D::Q4_0, 31}, {D::Q8_0, 1}, {D::F16, 5}, {D::F32, 11}}},
      {"stories260K-q4_k_m.gguf", 48, {{D::Q5_0, 29}, {D::Q8_0, 3}, {D::F16, 5}, {D::F32, 11}}},
      {"synth-256-f32.gguf", 39, {{D::F32, 39}}},
      {"synth-256-f16.gguf", 39, {{D::F16, 30}, {D::F32, 9}}},
      {"synth-256-q8_0.gguf", 39, {{D::Q8_0, 30}, {D::F32, 9}}},
      {"synth-256-q4_0.gguf", 39, {{D::Q4_0, 29}, {D::Q6_K, 1}, {D::F32, 9}}},
      {"synth-256-q4_1.gguf", 39, {{D::Q4_1, 29}, {D::Q6_K, 1}, {D::F32, 9}}},
      {"synth-256-q5_0.gguf", 39, {{D::Q5_0, 29}, {D::Q6_K, 1}, {D::F32, 9}}},
      {"synth-256-q5_1.gguf", 39, {{D::Q5_1, 29}, {D::Q6_K, 1}, {D::F32, 9}}},
      {"synth-256-q2_k.gguf", 39, {{D::Q2_K, 17}, {D::Q3_K, 12}, {D::Q6_K, 1}, {D::F32, 9}}},
      {"synth-256-q3_k_m.gguf", 39, {{D::Q3_K, 17}, {D::Q4_K, 10}, {D::Q5_K, 2}, {D::Q6_K, 1}, {D::F32, 9}}},
      {"synth-256-q4_k_m.gguf", 39, {{D::Q4_K, 25}, {D::Q6_K, 5}, {D::F32, 9}}},
      {"synth-256-q5_k_m.gguf", 39, {{D::Q5_K, 25}, {D::Q6_K, 5}, {D::F32, 9}}},
      {"synth-256-q6_k.gguf", 39, {{D::Q6_K, 30}, {D::F32, 9}}},
      {"synth-qwen2-f32.gguf", 38, {{D::F32, 38}}},
      {"synth-qwen2-f16.gguf", 38, {{D::F16, 22}, {D::F32, 16}}},
      {"synth-qwen2-q8_0.gguf", 38, {{D::Q8_0, 22}, {D::F32, 16}}},
      {"synth-qwen2-q4_k_m.gguf", 38, {{D::Q4_K, 17}, {D::Q6_K, 2}, {D::Q5_0, 2}, {D::Q8_0, 1}, {D::F32, 16}}},
  };
  for (const Expect& c : cases) {
    SCOPED_TRACE(c.file);
    auto f = File::open(model(c.file));
    EXPECT_EQ(f->version(), 3u);
    EXPECT_EQ(f->tensors().size(), c.n_tensors);
    EXPECT_EQ(type_counts(*f), c.types);
    check_layout(*f);
  }
}

TEST(GgufModels, SpecificTensors) {
  {
    auto f = File::open(model("stories260K-q4_0.gguf"));
    EXPECT_EQ(f->tensor("output.weight").dtype, DType::Q8_0);
    EXPECT_EQ(f->tensor("blk.3.ffn_down.weight").dtype, DType::F16);
    EXPECT_EQ(f->tensor("token_embd.weight").dtype, DType::Q4_0);
    EXPECT_EQ(f->tensor("token_embd.weight").nbytes, 512u * (64 / 32) * 18);
    EXPECT_EQ(f->get_int("general.file_type"), 2);
  }
  {
    auto f = File::open(model("stories260K-q4_k_m.gguf"));
    EXPECT_EQ(f->tensor("output.weight").dtype, DType::Q8_0);
    EXPECT_EQ(f->tensor("blk.2.attn_v.weight").dtype, DType::Q8_0);
    EXPECT_EQ(f->tensor("blk.4.attn_v.weight").dtype, DType::Q8_0);
    EXPECT_EQ(f->tensor("blk.0.attn_v.weight").dtype, DType::Q5_0);
    EXPECT_EQ(f->get_int("general.quantization_version"), 2);
  }
  {
    auto f = File::open(model("synth-256-q3_k_m.gguf"));
    EXPECT_EQ(f->get_int("llama.embedding_length"), 256);
    EXPECT_EQ(f->get_int("llama.block_count"), 4);
    EXPECT_EQ(f->tensor("blk.0.attn_v.weight").dtype, DType::Q5_K);
    EXPECT_EQ(f->tensor("blk.2.attn_v.weight").dtype, DType::Q4_K);
    EXPECT_EQ(f->tensor("output.weight").dtype, DType::Q6_K);
    EXPECT_EQ(f->tensor("blk.0.ffn_down.weight").ne, (std::vector<int64_t>{768, 256}));
    EXPECT_EQ(f->tensor("blk.0.ffn_down.weight").nbytes, 256u * 3 * 144);
  }
  {
    auto f = File::open(model("synth-qwen2-q4_k_m.gguf"));
    EXPECT_EQ(f->get_string("general.architecture"), "qwen2");
    EXPECT_EQ(f->get_int("qwen2.block_count"), 3);
    EXPECT_EQ(f->find_tensor("output.weight"), nullptr);
    EXPECT_EQ(f->tensor("token_embd.weight").dtype, DType::Q6_K);
    EXPECT_EQ(f->tensor("blk.2.attn_v.weight").dtype, DType::Q6_K);
    EXPECT_EQ(f->tensor("blk.0.ffn_down.weight").dtype, DType::Q5_0);
    EXPECT_EQ(f->tensor("blk.1.ffn_down.weight").dtype, DType::Q5_0);
    EXPECT_EQ(f->tensor("blk.2.ffn_down.weight").dtype, DType::Q8_0);
    EXPECT_EQ(f->tensor("blk.0.attn_k.bias").ne, (std::vector<int64_t>{64}));
    EXPECT_EQ(f->tensor("blk.0.attn_k.bias").dtype, DType::F32);
    EXPECT_FLOAT_EQ(static_cast<float>(f->get_float("qwen2.rope.freq_base")), 1e6f);
  }
}

TEST(GgufModels, VocabOnlyFiles) {
  const std::pair<const char*, size_t> cases[] = {{"ggml-vocab-llama-spm.gguf", 32000},
                                                  {"ggml-vocab-phi-3.gguf", 32064},
                                                  {"ggml-vocab-gpt-2.gguf", 50257},
                                                  {"ggml-vocab-falcon.gguf", 65024}};
  for (auto [name, n_tokens] : cases) {
    SCOPED_TRACE(name);
    auto f = File::open(vocab(name));
    EXPECT_TRUE(f->tensors().empty());
    EXPECT_GT(f->data_offset(), 0u);
    const auto& tokens = f->get_array("tokenizer.ggml.tokens");
    EXPECT_EQ(tokens.size(), n_tokens);
  }
  auto f = File::open(vocab("ggml-vocab-gpt-2.gguf"));
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f->get_string("tokenizer.ggml.pre"), "gpt-2");
  EXPECT_FALSE(f->get_array("tokenizer.ggml.merges").empty());
}

// copy_of + write reproduces every shared file byte for byte: llama.cpp's and gguf-py's writers lay
// files out as ours does (tensors in info order, each padded; vocab-only files unpadded).
TEST(GgufModels, CopyOfReproducesEveryFileExactly) {
  std::vector<std::string> paths;
  for (const auto& e : std::filesystem::directory_iterator(std::string(NIBBLE_SHARED_DIR) + "/models"))
    if (e.path().extension() == ".gguf") paths.push_back(e.path());
  for (const auto& e : std::filesystem::directory_iterator(std::string(NIBBLE_SHARED_DIR) + "/reference/tokenizer"))
    if (e.path().extension() == ".gguf") paths.push_back(e.path());
  EXPECT_EQ(paths.size(), 25u);  // 21 models, 4 vocabs
  for (const std::string& p : paths) {
    SCOPED_TRACE(p);
    auto f = File::open(p);
    std::vector<uint8_t> out = Writer::copy_of(*f).to_bytes();
    ASSERT_EQ(out.size(), f->size());
    EXPECT_EQ(std::memcmp(out.data(), f->bytes(), out.size()), 0);
  }
}

TEST(GgufModels, CopyOfWriteToDisk) {
  auto f = File::open(model("stories260K.gguf"));
  auto dir = std::filesystem::temp_directory_path() / fmt::format("nibble_gguf_{}", ::getpid());
  std::filesystem::create_directories(dir);
  std::string out = (dir / "copy.gguf").string();
  Writer w = Writer::copy_of(*f);
  w.write(out);
  auto g = File::open(out);
  EXPECT_EQ(g->metadata().size(), f->metadata().size());
  for (size_t k = 0; k < f->metadata().size(); ++k) {
    EXPECT_EQ(g->metadata()[k].first, f->metadata()[k].first);
    EXPECT_TRUE(g->metadata()[k].second == f->metadata()[k].second) << f->metadata()[k].first;
  }
  ASSERT_EQ(g->size(), f->size());
  EXPECT_EQ(std::memcmp(g->bytes(), f->bytes(), f->size()), 0);

  // Modify and write again: a new key, a changed value, one more tensor.
  w.set_string("general.name", "copy");
  w.set_u32("nibble.test", 7);
  w.add_tensor("extra", DType::F32, {8}, std::vector<uint8_t>(32, 0x3f));
  w.write(out);
  auto h = File::open(out);
  EXPECT_EQ(h->metadata().size(), f->metadata().size() + 1);
  EXPECT_EQ(h->get_string("general.name"), "copy");
  EXPECT_EQ(h->get_int("nibble.test"), 7);
  EXPECT_EQ(h->tensors().size(), 49u);
  EXPECT_EQ(h->tensor("extra").data[31], 0x3f);
  EXPECT_EQ(std::memcmp(h->tensor("output.weight").data, f->tensor("output.weight").data,
                        f->tensor("output.weight").nbytes), 0);
  std::filesystem::remove_all(dir);
}

TEST(GgufModels, OpenErrorsNameThePath) {
  expect_error([] { File::open("/nonexistent/x.gguf"); }, {"/nonexistent/x.gguf"});
  auto dir = std::filesystem::temp_directory_path() / fmt::format("nibble_gguf_t_{}", ::getpid());
  std::filesystem::create_directories(dir);
  std::string p = (dir / "trunc.gguf").string();
  {
    auto f = File::open(model("stories260K.gguf"));
    std::FILE* out = std::fopen(p.c_str(), "wb");
    ASSERT_NE(out, nullptr);
    std::fwrite(f->bytes(), 1, 1000, out);
    std::fclose(out);
  }
  std::string msg = expect_error([&] { File::open(p); }, {p + ": offset "});
  EXPECT_EQ(msg.rfind(p, 0), 0u) << msg;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace nibble::gguf
