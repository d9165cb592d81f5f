// llama.cpp's tokenizer test vectors (reference/tokenizer/*.inp/.out, README §6): every case exact.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/unit/tokenizer/tok_test_util.h"

namespace nibble::test {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

// .inp: each text followed by "\n__ggml_vocab_test__\n"; .out: one line of ids per text.
std::vector<Case> load_cases(const std::string& vocab) {
  const std::string base = shared_path("reference/tokenizer/ggml-vocab-" + vocab + ".gguf");
  const std::string inp = read_all(base + ".inp"), out = read_all(base + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  for (size_t pos = 0;;) {
    size_t e = inp.find(sep, pos);
    if (e == std::string::npos) break;
    cases.push_back({inp.substr(pos, e - pos), {}});
    pos = e + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  for (Case& c : cases) {
    if (!std::getline(lines, line)) break;
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) c.ids.push_back(id);
  }
  return cases;
}

class Vectors : public ::testing::TestWithParam<std::string> {};

TEST_P(Vectors, AllCasesExact) {
  const Tokenizer& tok = tokenizer_for("reference/tokenizer/ggml-vocab-" + GetParam() + ".gguf");
  std::vector<Case> cases = load_cases(GetParam());
  ASSERT_EQ(cases.size(), 46u);
  int failed = 0;
  for (const Case& c : cases) {
    std::vector<int32_t> got = tok.encode(c.text, /*add_special=*/false, /*parse_special=*/false);
    if (got != c.ids) {
      ++failed;
      ADD_FAILURE() << "text '" << c.text << "': got " << ::testing::PrintToString(got) << ", want "
                    << ::testing::PrintToString(c.ids);
    }
  }
  EXPECT_EQ(failed, 0);
}

INSTANTIATE_TEST_SUITE_P(Tokenizer, Vectors, ::testing::Values("llama-spm", "phi-3", "gpt-2", "falcon"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace nibble::test
