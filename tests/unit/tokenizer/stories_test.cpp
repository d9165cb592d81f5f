// stories260K: llama.cpp's prompt ids (BOS added) and the text of its greedy continuation.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/unit/tokenizer/tok_test_util.h"

namespace nibble::test {
namespace {

const Tokenizer& stories() { return tokenizer_for("models/stories260K.gguf"); }

nlohmann::json load(const std::string& slug) {
  std::ifstream in(shared_path("reference/stories260K/f32/" + slug + ".json"));
  EXPECT_TRUE(in) << slug;
  return nlohmann::json::parse(in);
}

class Stories : public ::testing::TestWithParam<std::string> {};

TEST_P(Stories, PromptIds) {
  nlohmann::json j = load(GetParam());
  auto want = j["prompt_ids"].get<std::vector<int32_t>>();
  const std::string prompt = j["prompt"];
  EXPECT_EQ(stories().encode(prompt, /*add_special=*/true, /*parse_special=*/true), want);
  EXPECT_EQ(stories().encode(prompt, true, false), want);
  // Without BOS the ids are the same minus the first.
  EXPECT_EQ(stories().encode(prompt, false, false), std::vector<int32_t>(want.begin() + 1, want.end()));
}

TEST_P(Stories, GreedyText) {
  nlohmann::json j = load(GetParam());
  const std::string prompt = j["prompt"], text = j["text"];
  auto prompt_ids = j["prompt_ids"].get<std::vector<int32_t>>();
  auto greedy = j["greedy_ids"].get<std::vector<int32_t>>();
  ASSERT_EQ(text.substr(0, prompt.size()), prompt);
  const std::string continuation = text.substr(prompt.size());

  // `text` is the prompt plus each greedy token's piece.
  std::string pieces;
  for (int32_t id : greedy) pieces += stories().token_to_piece(id);
  EXPECT_EQ(pieces, continuation);

  // decode is llama.cpp's detokenize: the first token's leading space goes (it is the one
  // add_space_prefix put there when the text was the whole input).
  std::string want = continuation;
  if (!want.empty() && want[0] == ' ') want.erase(0, 1);
  EXPECT_EQ(stories().decode(greedy), want);
  EXPECT_EQ(stories().decode(std::vector<int32_t>(prompt_ids.begin() + 1, prompt_ids.end())), prompt);
  // A leading BOS prints nothing but takes the strip, as in llama.cpp.
  std::vector<int32_t> all = prompt_ids;
  all.insert(all.end(), greedy.begin(), greedy.end());
  EXPECT_EQ(stories().decode(all), " " + text);
}

INSTANTIATE_TEST_SUITE_P(Tokenizer, Stories, ::testing::Values("once_upon_a_time", "the_little_dog"));

TEST(Stories, VocabDefaults) {
  const Vocab& v = stories().vocab();
  EXPECT_EQ(v.model, "llama");
  EXPECT_EQ(stories().n_vocab(), 512);
  EXPECT_EQ(v.bos, 1);
  EXPECT_EQ(v.eos, 2);
  EXPECT_EQ(v.unk, 0);
  EXPECT_EQ(v.pad, -1);  // stored as 0xFFFFFFFF: out of range, so no padding token (llama.cpp)
  EXPECT_TRUE(v.add_bos);
  EXPECT_FALSE(v.add_eos);
  EXPECT_TRUE(v.add_space_prefix);
}

}  // namespace
}  // namespace nibble::test
