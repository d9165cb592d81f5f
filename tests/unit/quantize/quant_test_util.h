// Helpers of the quantize/synth tests: shared files, temporary files, running a model on the reference
// interpreter, perplexity as llama-perplexity computes it.
#pragma once
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "frontends/gguf/gguf.h"
#include "frontends/llama/llama_builder.h"
#include "frontends/tokenizer/tokenizer.h"
#include "ir/interp/interpreter.h"
#include "passes/pass.h"
#include "passes/pipeline.h"
#include "support/error.h"

namespace nibble::testing {

inline std::string shared_path(const std::string& rel) { return std::string(NIBBLE_SHARED_DIR) + "/" + rel; }
inline std::string model_path(const std::string& name) { return shared_path("models/" + name + ".gguf"); }

// A directory removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "nibble-quant-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The model of a GGUF file, prepared for the reference interpreter as `nibble ... --target ref` does.
inline std::unique_ptr<Module> load_ref_module(const std::string& path, int64_t n_ctx) {
  std::shared_ptr<const gguf::File> f = gguf::File::open(path);
  ModelBuildOptions o;
  o.n_ctx = n_ctx;
  auto m = build_llama_module(f, o);
  PassManager pm;
  pm.add_pipeline(default_pipeline("ref"));
  pm.run(*m);
  return m;
}

// llama-perplexity's default method (README §3): chunks of `ctx` tokens starting with BOS, each from an
// empty cache, scoring the second half.
inline double perplexity(const std::string& model, const std::string& text, int ctx) {
  auto file = gguf::File::open(model);
  auto tok = Tokenizer::create(vocab_from_gguf(*file));
  std::vector<int32_t> tokens = tok->encode(text, true, false);
  auto m = load_ref_module(model, ctx);
  Interpreter interp(*m);
  const int64_t n_vocab = tok->n_vocab();
  std::vector<int32_t> pos(static_cast<size_t>(ctx));
  for (int i = 0; i < ctx; ++i) pos[size_t(i)] = i;
  double nll = 0;
  int64_t count = 0;
  for (size_t c = 0; c + size_t(ctx) <= tokens.size(); c += size_t(ctx)) {
    std::vector<int32_t> chunk(tokens.begin() + int64_t(c), tokens.begin() + int64_t(c) + ctx);
    chunk[0] = tok->vocab().bos;
    interp.reset_state();
    std::vector<float> logits = interp.forward(chunk, pos);
    for (int j = ctx / 2; j < ctx - 1; ++j) {
      const float* l = logits.data() + int64_t(j) * n_vocab;
      float mx = l[0];
      for (int64_t v = 1; v < n_vocab; ++v) mx = std::max(mx, l[v]);
      double sum = 0;
      for (int64_t v = 0; v < n_vocab; ++v) sum += std::exp(double(l[v] - mx));
      nll += -(double(l[tokens[c + size_t(j) + 1]] - mx) - std::log(sum));
      ++count;
    }
  }
  return std::exp(nll / double(count));
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Expects `f` to throw nibble::Error whose message contains `part`.
template <class F>
void expect_error(F&& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing '" << part << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

}  // namespace nibble::testing
