// The quantization driver against llama.cpp's own files: the same types, the same bytes (every shipped
// file llama-quantize made comes out byte for byte identical), requantization, f16 input, metadata,
// overrides, perplexity of the quantized stories260K, and the streaming writer it relies on.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "frontends/gguf/gguf.h"
#include "frontends/quantize/convert.h"
#include "frontends/quantize/quantize.h"
#include "quant_test_util.h"

namespace nibble::quant {
namespace {

using testing::expect_error;
using testing::model_path;
using testing::read_bytes;
using testing::TempDir;

void quantize_file(const std::string& in, const std::string& out, QuantizeOptions o) {
  auto f = gguf::File::open(in);
  write_quantized(*f, plan_quantize(*f, o), out, o);
}

QuantizeOptions opts(const std::string& type) {
  QuantizeOptions o;
  o.type = type;
  o.threads = 2;
  return o;
}

struct RefCase {
  std::string model;      // f32 source in shared/models
  std::string type;
  std::string reference;  // llama.cpp-made file in shared/models
  bool whole_file;        // made by llama-quantize: the whole file must be identical
};

std::string case_name(const ::testing::TestParamInfo<RefCase>& i) {
  std::string s = i.param.reference;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

class AgainstLlamaCpp : public ::testing::TestWithParam<RefCase> {};

TEST_P(AgainstLlamaCpp, SameTypesAndBytes) {
  const RefCase& c = GetParam();
  TempDir dir;
  const std::string out = dir.file("out.gguf");
  quantize_file(model_path(c.model), out, opts(c.type));

  auto got = gguf::File::open(out);
  auto want = gguf::File::open(model_path(c.reference));
  ASSERT_EQ(got->tensors().size(), want->tensors().size());
  for (const gguf::TensorInfo& w : want->tensors()) {
    const gguf::TensorInfo* g = got->find_tensor(w.name);
    ASSERT_NE(g, nullptr) << w.name;
    EXPECT_EQ(g->ne, w.ne) << w.name;
    EXPECT_EQ(dtype_name(g->dtype), std::string(dtype_name(w.dtype))) << w.name;
    ASSERT_EQ(g->nbytes, w.nbytes) << w.name;
    // Every format's reference quantizer is byte-exact with ggml's.
    EXPECT_EQ(std::memcmp(g->data, w.data, w.nbytes), 0) << w.name << " (" << dtype_name(w.dtype) << ")";
  }
  if (c.whole_file) {
    EXPECT_TRUE(read_bytes(out) == read_bytes(model_path(c.reference))) << "file differs";
  }
}

std::vector<RefCase> ref_cases() {
  std::vector<RefCase> r;
  for (const char* t : {"f16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k"})
    r.push_back({"synth-256-f32", t, std::string("synth-256-") + t, true});
  for (const char* t : {"f16", "q8_0", "q4_k_m"})
    r.push_back({"synth-qwen2-f32", t, std::string("synth-qwen2-") + t, true});
  r.push_back({"stories260K", "f16", "stories260K-f16", true});
  r.push_back({"stories260K", "q4_k_m", "stories260K-q4_k_m", true});
  // Made by ggml_quantize_chunk per tensor (llama-quantize refuses 172-column ffn_down): same tensors.
  r.push_back({"stories260K", "q8_0", "stories260K-q8_0", false});
  r.push_back({"stories260K", "q4_0", "stories260K-q4_0", false});
  return r;
}

INSTANTIATE_TEST_SUITE_P(Models, AgainstLlamaCpp, ::testing::ValuesIn(ref_cases()), case_name);

TEST(Quantize, PlanReportsFallbacks) {
  auto f = gguf::File::open(model_path("synth-qwen2-f32"));
  QuantizePlan p = plan_quantize(*f, opts("q4_k_m"));
  EXPECT_EQ(p.target.name, "q4_k_m");
  EXPECT_EQ(p.n_fallback, 3);
  EXPECT_EQ(p.n_fallback + p.n_fitting, 22);
  int biases = 0;
  for (const TensorPlan& t : p.tensors) {
    if (t.name.find(".bias") != std::string::npos) {
      ++biases;
      EXPECT_FALSE(t.quantizable);
      EXPECT_EQ(t.to, DType::F32);
    }
    if (t.name == "blk.2.ffn_down.weight") {
      EXPECT_TRUE(t.choice.fallback);
      EXPECT_EQ(t.to, DType::Q8_0);
      EXPECT_EQ(t.bytes_to, uint64_t(704 / 32 * 34 * 256));
    }
  }
  EXPECT_EQ(biases, 9);
  EXPECT_EQ(p.bytes_from(), uint64_t(2247552) * 4);
}

TEST(Quantize, Errors) {
  auto f = gguf::File::open(model_path("stories260K"));
  expect_error([&] { plan_quantize(*f, opts("q9_k")); }, "unknown type 'q9_k'");
  QuantizeOptions o = opts("q8_0");
  o.tensor_types = {"attn_v"};
  expect_error([&] { plan_quantize(*f, o); }, "expected PATTERN=TYPE");
  o.tensor_types = {"(attn=q8_0"};
  expect_error([&] { plan_quantize(*f, o); }, "bad pattern");
  expect_error([] { gguf::File::open("/nonexistent/model.gguf"); }, "/nonexistent/model.gguf");
  // A failed run leaves no output behind.
  TempDir dir;
  expect_error([&] { quantize_file(model_path("synth-256-q4_k_m"), dir.file("o.gguf"), opts("q8_0")); },
               "requantizing from q6_k is disabled");
  EXPECT_FALSE(std::filesystem::exists(dir.file("o.gguf")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("o.gguf.tmp")));
}

TEST(Quantize, RequantizeDequantizesFirst) {
  TempDir dir;
  const std::string in = model_path("synth-256-q4_k_m");
  QuantizeOptions o = opts("q8_0");
  o.allow_requantize = true;
  quantize_file(in, dir.file("q8.gguf"), o);
  auto src = gguf::File::open(in);
  auto out = gguf::File::open(dir.file("q8.gguf"));
  for (const gguf::TensorInfo& t : out->tensors()) {
    const gguf::TensorInfo& s = src->tensor(t.name);
    if (t.ne.size() == 1) {
      EXPECT_EQ(t.dtype, DType::F32);
      continue;
    }
    ASSERT_EQ(t.dtype, DType::Q8_0) << t.name;
    // Each row: decoded from the source type, then encoded by the q8_0 reference quantizer.
    const int64_t n = t.ne[0];
    std::vector<float> row(static_cast<size_t>(n));
    std::vector<uint8_t> enc(size_t(row_bytes(DType::Q8_0, n)));
    for (int64_t r = 0; r < t.ne[1]; r += 37) {
      dtype_info(s.dtype).dequantize_row(s.data + r * row_bytes(s.dtype, n), row.data(), n);
      dtype_info(DType::Q8_0).quantize_row(row.data(), enc.data(), n);
      ASSERT_EQ(std::memcmp(enc.data(), t.data + r * int64_t(enc.size()), enc.size()), 0) << t.name << " row " << r;
    }
  }
}

TEST(Quantize, SameTypeIsCopiedAsIs) {
  // Every tensor already has the type the mix gives it: nothing is re-encoded, no --allow-requantize.
  TempDir dir;
  quantize_file(model_path("synth-256-q4_k_m"), dir.file("same.gguf"), opts("q4_k_m"));
  EXPECT_TRUE(read_bytes(dir.file("same.gguf")) == read_bytes(model_path("synth-256-q4_k_m")));
}

TEST(Quantize, F16InputToF32IsExact) {
  TempDir dir;
  quantize_file(model_path("synth-256-f16"), dir.file("f32.gguf"), opts("f32"));
  auto src = gguf::File::open(model_path("synth-256-f16"));
  auto out = gguf::File::open(dir.file("f32.gguf"));
  for (const gguf::TensorInfo& t : out->tensors()) {
    ASSERT_EQ(t.dtype, DType::F32) << t.name;
    std::vector<float> want(size_t(t.n_elements()));
    dtype_info(src->tensor(t.name).dtype).dequantize_row(src->tensor(t.name).data, want.data(), t.n_elements());
    EXPECT_EQ(std::memcmp(want.data(), t.data, t.nbytes), 0) << t.name;
  }
  EXPECT_EQ(out->get_int("general.file_type"), 0);
}

TEST(Quantize, MetadataRoundTripsAndModelLoads) {
  TempDir dir;
  const std::string out = dir.file("q.gguf");
  quantize_file(model_path("stories260K"), out, opts("q4_k_m"));
  auto src = gguf::File::open(model_path("stories260K"));
  auto q = gguf::File::open(out);
  for (const auto& [key, value] : src->metadata()) {
    if (key == "general.file_type") continue;
    const gguf::Value* v = q->find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_TRUE(*v == value) << key;
  }
  EXPECT_EQ(q->metadata().size(), src->metadata().size() + 2);
  EXPECT_EQ(q->get_int("general.file_type"), 15);
  EXPECT_EQ(q->get_int("general.quantization_version"), 2);
  EXPECT_EQ(q->metadata().back().first, "general.file_type");

  auto m = testing::load_ref_module(out, 64);
  Interpreter interp(*m);
  std::vector<float> logits = interp.forward({1, 403, 407, 261, 378}, {0, 1, 2, 3, 4});
  ASSERT_EQ(logits.size(), size_t(5 * 512));
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
}

TEST(Quantize, OverridesAndPure) {
  TempDir dir;
  QuantizeOptions o = opts("q4_k_m");
  o.tensor_types = {"attn_v=q8_0", "blk\\.3\\.ffn_down=q5_k"};
  quantize_file(model_path("synth-256-f32"), dir.file("o.gguf"), o);
  auto f = gguf::File::open(dir.file("o.gguf"));
  for (int l = 0; l < 4; ++l) EXPECT_EQ(f->tensor(fmt::format("blk.{}.attn_v.weight", l)).dtype, DType::Q8_0);
  EXPECT_EQ(f->tensor("blk.3.ffn_down.weight").dtype, DType::Q5_K);
  EXPECT_EQ(f->tensor("blk.2.ffn_down.weight").dtype, DType::Q6_K);
  EXPECT_EQ(f->get_int("general.file_type"), 15);

  QuantizeOptions p = opts("q4_k_m");
  p.pure = true;
  quantize_file(model_path("synth-256-f32"), dir.file("p.gguf"), p);
  auto g = gguf::File::open(dir.file("p.gguf"));
  for (const gguf::TensorInfo& t : g->tensors()) EXPECT_EQ(t.dtype, t.ne.size() == 1 ? DType::F32 : DType::Q4_K) << t.name;
}

TEST(Quantize, OutputMayBeInput) {
  TempDir dir;
  const std::string path = dir.file("m.gguf");
  std::filesystem::copy_file(model_path("stories260K"), path);
  quantize_file(path, path, opts("q8_0"));
  auto f = gguf::File::open(path);
  EXPECT_EQ(f->tensor("blk.0.attn_q.weight").dtype, DType::Q8_0);
  EXPECT_EQ(f->tensor("blk.0.ffn_down.weight").dtype, DType::F16);
}

// README §3: llama-perplexity on story.txt, c = 64. Our f32 matmuls see exactly the quantized weights.
TEST(Quantize, PerplexityOfQuantizedStories) {
  TempDir dir;
  const std::string text = testing::read_text(testing::shared_path("reference/story.txt"));
  const double f32 = testing::perplexity(model_path("stories260K"), text, 64);
  EXPECT_NEAR(f32, 4.2608, 4.2608 * 2e-3);
  quantize_file(model_path("stories260K"), dir.file("q8.gguf"), opts("q8_0"));
  quantize_file(model_path("stories260K"), dir.file("q4.gguf"), opts("q4_0"));
  const double q8 = testing::perplexity(dir.file("q8.gguf"), text, 64);
  const double q4 = testing::perplexity(dir.file("q4.gguf"), text, 64);
  EXPECT_NEAR(q8, f32, f32 * 3e-3) << "q8_0";
  EXPECT_NEAR(q8, 4.2634, 4.2634 * 5e-3) << "q8_0 vs llama.cpp";
  EXPECT_GT(q4, f32);
  EXPECT_LT(q4, f32 * 1.15) << "q4_0";
  EXPECT_NEAR(q4, 4.6065, 4.6065 * 2e-2) << "q4_0 vs llama.cpp";
}

TEST(Convert, ChunksAndThreadsGiveTheSameBytes) {
  const int64_t nrows = 37, ncols = 512;
  auto src = [](int64_t r, float* out) {
    for (int64_t c = 0; c < ncols; ++c) out[c] = std::sin(float(r * ncols + c) * 0.37f) * float(1 + r % 5);
  };
  for (DType t : {DType::Q4_K, DType::Q6_K, DType::Q8_0, DType::F16}) {
    std::vector<uint8_t> one, many;
    convert_rows(nrows, ncols, t, src, [&](const void* p, size_t n) {
      one.insert(one.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
    }, 1);
    int chunks = 0;
    convert_rows(nrows, ncols, t, src, [&](const void* p, size_t n) {
      ++chunks;
      many.insert(many.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
    }, 3, 5 * ncols * sizeof(float));
    EXPECT_EQ(one.size(), size_t(nrows * row_bytes(t, ncols)));
    EXPECT_TRUE(one == many) << dtype_name(t);
    EXPECT_EQ(chunks, 8);  // 5 rows a chunk
  }
  expect_error([&] { convert_rows(1, 100, DType::Q4_K, src, [](const void*, size_t) {}); }, "block of 256");
}

TEST(StreamingWriter, MatchesInMemoryTensorsAndChecksSizes) {
  std::vector<uint8_t> data(34 * 4);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 7);
  gguf::Writer a, b;
  a.set_string("k", "v");
  b.set_string("k", "v");
  a.add_tensor("t", DType::Q8_0, {64, 2}, data);
  b.add_tensor_stream("t", DType::Q8_0, {64, 2}, [&](const gguf::Writer::ByteSink& out) {
    out(data.data(), 10);
    out(data.data() + 10, data.size() - 10);
  });
  a.add_tensor("u", DType::F32, {3}, std::vector<uint8_t>(12, 1));
  b.add_tensor_stream("u", DType::F32, {3}, [](const gguf::Writer::ByteSink& out) {
    std::vector<uint8_t> v(12, 1);
    out(v.data(), v.size());
  });
  EXPECT_TRUE(a.to_bytes() == b.to_bytes());

  gguf::Writer shortw;
  shortw.add_tensor_stream("t", DType::F32, {4}, [](const gguf::Writer::ByteSink& out) { out("abcd", 4); });
  expect_error([&] { shortw.to_bytes(); }, "producer gave 4 bytes, expected 16");
  gguf::Writer longw;
  longw.add_tensor_stream("t", DType::F32, {1}, [](const gguf::Writer::ByteSink& out) { out("abcdefgh", 8); });
  expect_error([&] { longw.to_bytes(); }, "producer gave more than the 4 bytes");
  gguf::Writer bad;
  expect_error([&] { bad.add_tensor_stream("t", DType::Q4_K, {100}, [](const gguf::Writer::ByteSink&) {}); },
               "not a multiple");
  TempDir dir;
  expect_error([&] { shortw.write(dir.file("x.gguf")); }, "expected 16");
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.gguf")));
}

}  // namespace
}  // namespace nibble::quant
