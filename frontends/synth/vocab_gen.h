// A generated SentencePiece ("llama") vocabulary of any size: <unk>, <s>, </s>, the 256 byte tokens
// <0x00>..<0xFF>, then pieces that look like a real vocabulary's (letters, punctuation, "▁"-prefixed
// common words and their prefixes, then syllables and syllable pairs), with decreasing scores. Every
// piece longer than one character is its prefix plus one character, both in the vocabulary, so the SPM
// merges can reach it; anything else is spelled with the byte tokens, so every text round-trips.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nibble::synth {

struct SpmVocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;  // llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte
};

inline constexpr int64_t kMinVocab = 3 + 256 + 1;  // specials, bytes and "▁"

// Deterministic; throws nibble::Error when n_vocab < kMinVocab or larger than it can generate (~100k).
SpmVocab make_spm_vocab(int64_t n_vocab);

}  // namespace nibble::synth
