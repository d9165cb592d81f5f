// BPE pre-tokenizers: split text into words as llama.cpp's unicode_regex_split does for each
// tokenizer.ggml.pre, with the regexes hand-matched (no std::regex).
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::pretok {

enum class Pre {
  Default,  // "default" (or no pre): punctuation runs, GPT-2 regex, digit runs, digit triples
  Gpt2,     // "gpt-2" and friends: the GPT-2 regex alone
  Falcon,   // punctuation runs, GPT-2 regex, digit triples
  Llama3,   // the Llama 3 regex (digits in groups of up to 3)
  Qwen2,    // the Llama 3 regex with single digits
  StarCoder,  // single digits, then the GPT-2 regex
};

// Maps a tokenizer.ggml.pre value to its pre-tokenizer; nullopt when not supported.
std::optional<Pre> pre_from_name(std::string_view name);

// The words of `text`, as UTF-8 (before byte encoding). Like llama.cpp, the text is decoded to codepoints
// first and the words are re-encoded from them, so invalid input bytes come out as U+FFFD.
std::vector<std::string> split(std::string_view text, Pre pre);

}  // namespace nibble::pretok
