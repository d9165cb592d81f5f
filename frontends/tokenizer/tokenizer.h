// Tokenizers read from GGUF metadata: SentencePiece-style (tokenizer.ggml.model = "llama") and
// byte-level BPE ("gpt2", with the pre-tokenizer named by tokenizer.ggml.pre), as llama.cpp does.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::gguf { class File; }

namespace nibble {

struct Vocab {
  std::string model;                 // "llama" (SPM) or "gpt2" (BPE)
  std::string pre;                   // BPE pre-tokenizer name ("default", "gpt-2", "falcon", "llama3", ...)
  std::vector<std::string> tokens;
  std::vector<float> scores;         // SPM merge priorities (may be empty for BPE)
  std::vector<int32_t> types;        // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  std::vector<std::string> merges;   // BPE merges "a b", by rank
  int32_t bos = -1, eos = -1, unk = -1, pad = -1;
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true;      // SPM: prefix text with a space (U+2581) as llama.cpp does
  // Added for llama.cpp parity:
  bool clean_spaces = false;         // decode: drop spaces before ?!., and some contractions (BPE default)
  bool ignore_merges = false;        // BPE (llama3): a pre-token that is itself a token is not merged
  std::vector<uint8_t> strip;        // per token, or empty: kStripLeft/kStripRight trim whitespace next to
                                     // a matched special token (llama.cpp's per-model lstrip/rstrip)
  static constexpr uint8_t kStripLeft = 1, kStripRight = 2;
};

// Reads tokenizer.ggml.* keys; throws nibble::Error naming the file and key on bad metadata.
Vocab vocab_from_gguf(const gguf::File& f);

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  static std::unique_ptr<Tokenizer> create(Vocab vocab);  // throws on an unsupported model/pre
  const Vocab& vocab() const { return vocab_; }
  int32_t n_vocab() const { return int32_t(vocab_.tokens.size()); }

  // add_special: BOS/EOS per the vocab's add_bos/add_eos. parse_special: match control/user-defined
  // token texts (e.g. "<s>") in the input as those tokens.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;
  // The text of one token as llama_token_to_piece prints it (SPM: U+2581 -> space, <0xNN> -> byte).
  std::string token_to_piece(int32_t id) const;
  std::string decode(const std::vector<int32_t>& ids) const;

 protected:
  explicit Tokenizer(Vocab v) : vocab_(std::move(v)) {}
  virtual void encode_text(std::string_view text, std::vector<int32_t>& out) const = 0;
  Vocab vocab_;

  // Added: the piece of a token of type normal (SPM: U+2581 -> space; BPE: byte-level decoding).
  virtual std::string normal_piece(const std::string& text) const = 0;
  // SPM: a text fragment that starts the input or follows a special token gets a leading space.
  bool prefix_space_ = false;
  // parse_special candidates: control, user-defined and unknown token ids, longest text first.
  std::vector<int32_t> special_ids_;
};

}  // namespace nibble
