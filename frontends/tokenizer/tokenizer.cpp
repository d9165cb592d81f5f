// Model-independent parts of Tokenizer, following llama.cpp's llama_vocab: special-token partitioning
// (tokenizer_st_partition), BOS/EOS, token_to_piece and detokenize.
#include "frontends/tokenizer/tokenizer.h"

#include <algorithm>
#include <cctype>

#include "frontends/tokenizer/models.h"
#include "support/error.h"

namespace nibble {
namespace detail {

TokenMap build_token_map(const Vocab& v) {
  TokenMap m;
  m.reserve(v.tokens.size());
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    auto [it, fresh] = m.emplace(v.tokens[i], int32_t(i));
    if (!fresh) fail("tokenizer: duplicate token text '{}' (ids {} and {})", v.tokens[i], it->second, i);
  }
  return m;
}

uint8_t byte_of_token(const std::string& text) {
  // strtol(text.substr(3, 2), 16): leading hex digits only, 0 when there are none.
  unsigned v = 0;
  for (size_t i = 3; i < 5 && i < text.size(); ++i) {
    char c = text[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) break;
    v = v * 16 + unsigned(d);
  }
  return uint8_t(v);
}

}  // namespace detail

namespace {

using namespace detail;

// A piece of the input: raw text, or a special token matched in it.
struct Fragment {
  int32_t token;  // -1 for text
  size_t off, len;
};

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// llama.cpp's tokenizer_st_partition: each special token, longest first, splits every remaining text
// fragment at all its occurrences. Without parse_special only user-defined tokens take part.
std::vector<Fragment> partition(const Vocab& v, const std::vector<int32_t>& special_ids, std::string_view text,
                                bool parse_special) {
  std::vector<Fragment> frags{{-1, 0, text.size()}};
  std::vector<Fragment> next;
  for (int32_t id : special_ids) {
    if (!parse_special && v.types[id] != kUserDefined) continue;
    const std::string& tok = v.tokens[id];
    const uint8_t strip = v.strip.empty() ? 0 : v.strip[id];
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t off = f.off, end = f.off + f.len;
      while (off < end) {
        size_t m = text.substr(0, end).find(tok, off);
        if (m == std::string_view::npos) break;
        size_t left_end = m;
        if (strip & Vocab::kStripLeft)
          while (left_end > off && is_space(text[left_end - 1])) --left_end;
        if (left_end > off) next.push_back({-1, off, left_end - off});
        next.push_back({id, 0, 0});
        off = m + tok.size();
        if (strip & Vocab::kStripRight)
          while (off < end && is_space(text[off])) ++off;
      }
      if (off < end) next.push_back({-1, off, end - off});
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::create(Vocab v) {
  const size_t n = v.tokens.size();
  if (n == 0) fail("tokenizer: empty vocabulary");
  if (v.types.empty()) v.types.assign(n, kNormal);
  if (v.scores.empty()) v.scores.assign(n, 0.0f);
  if (v.types.size() != n) fail("tokenizer: {} token types for {} tokens", v.types.size(), n);
  if (v.scores.size() != n) fail("tokenizer: {} scores for {} tokens", v.scores.size(), n);
  if (!v.strip.empty() && v.strip.size() != n) fail("tokenizer: {} strip flags for {} tokens", v.strip.size(), n);
  for (size_t i = 0; i < n; ++i)
    if (v.tokens[i].empty()) v.tokens[i] = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp
  for (auto [name, id] : {std::pair{"bos", v.bos}, {"eos", v.eos}, {"unk", v.unk}, {"pad", v.pad}})
    if (id < -1 || id >= int64_t(n)) fail("tokenizer: {} id {} out of range [0, {})", name, id, n);
  if (v.add_bos && v.bos < 0) fail("tokenizer: add_bos is set but there is no BOS token");
  if (v.add_eos && v.eos < 0) fail("tokenizer: add_eos is set but there is no EOS token");

  std::unique_ptr<Tokenizer> t;
  if (v.model == "llama") {
    t = make_spm(std::move(v));
  } else if (v.model == "gpt2") {
    auto pre = pretok::pre_from_name(v.pre);
    if (!pre) fail("tokenizer: unsupported BPE pre-tokenizer '{}' (tokenizer.ggml.pre)", v.pre);
    t = make_bpe(std::move(v), *pre);
  } else {
    fail("tokenizer: unsupported tokenizer model '{}' (tokenizer.ggml.model)", v.model);
  }

  const Vocab& vv = t->vocab_;
  for (size_t i = 0; i < n; ++i) {
    int32_t ty = vv.types[i];
    if (ty == kControl || ty == kUserDefined || ty == kUnknown) t->special_ids_.push_back(int32_t(i));
  }
  std::stable_sort(t->special_ids_.begin(), t->special_ids_.end(),
                   [&](int32_t a, int32_t b) { return vv.tokens[a].size() > vv.tokens[b].size(); });
  return t;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);
  if (!text.empty()) {
    bool prev_special = true;
    std::string buf;
    for (const Fragment& f : partition(vocab_, special_ids_, text, parse_special)) {
      if (f.token >= 0) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      std::string_view piece = text.substr(f.off, f.len);
      if (prefix_space_ && prev_special) {
        buf.assign(1, ' ');
        buf.append(piece);
        encode_text(buf, out);
      } else {
        encode_text(piece, out);
      }
      prev_special = false;
    }
  }
  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  if (id < 0 || id >= n_vocab()) fail("tokenizer: token id {} out of range [0, {})", id, n_vocab());
  const std::string& text = vocab_.tokens[id];
  switch (vocab_.types[id]) {
    case kNormal:
      return normal_piece(text);
    case kUserDefined:
      return text;
    case kByte:
      return std::string(1, char(byte_of_token(text)));
    default:  // control and unknown print nothing (llama.cpp with special = false), nor do other types
      return {};
  }
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string s;
  bool remove_space = vocab_.add_space_prefix;  // llama.cpp: only the first token's leading space
  for (int32_t id : ids) {
    std::string piece = token_to_piece(id);
    if (remove_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    remove_space = false;
    s += piece;
  }
  if (!vocab_.clean_spaces || s.empty()) return s;

  // llama.cpp's clean_up_tokenization_spaces, three in-place passes over the text, kept as they are.
  char* t = s.data();
  int total = int(s.size());
  const int total1 = total;
  total = 1;
  for (int i = 1; i < total1; ++i) {  // " ?", " !", " .", " ,"
    const char x = t[i];
    if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
    t[total++] = x;
  }
  const int total2 = total;
  total = total ? 1 : 0;
  for (int i = 1; i < total2; ++i) {  // " ' " -> "'"
    const char x = t[i];
    if (x == '\'' && i + 1 < total2 && t[i - 1] == ' ' && t[i + 1] == ' ') {
      --total;
      t[++i] = '\0';
    }
    t[total++] = x;
  }
  const int total3 = total;
  total = total ? 1 : 0;
  for (int i = 1; i < total3; ++i) {  // " 's", " 'm", " 're", " 've" lose the space
    const char x = t[i];
    if (t[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
      const char x1 = t[i + 1];
      if (x1 == 's' || x1 == 'm') {
        --total;
      } else if (x1 != 't' && x1 != 'd' && i + 2 < total3) {
        const char x2 = t[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
      }
    }
    t[total++] = x;
  }
  s.resize(size_t(total));
  return s;
}

}  // namespace nibble
