// Byte-level BPE (tokenizer.ggml.model = "gpt2"), as llama.cpp's llm_tokenizer_bpe: pre-tokenize, map
// each byte of a word to its GPT-2 codepoint, then merge adjacent symbols by merge rank (lowest first).
#include <cstring>
#include <queue>

#include "frontends/tokenizer/models.h"
#include "frontends/tokenizer/unicode.h"

namespace nibble::detail {
namespace {

struct Symbol {
  int prev, next;
  size_t off, n;  // bytes of the encoded word; n == 0 once merged into the left neighbour
};

struct Bigram {
  int left, right;
  int rank;
  std::string text;  // left + right when queued: a pair whose sides changed since is stale
};

// Lowest rank first; on equal ranks the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

// Key of a merge pair; the length prefix keeps ("a b", "c") and ("a", "b c") apart.
void pair_key(std::string& key, std::string_view a, std::string_view b) {
  uint32_t n = uint32_t(a.size());
  key.assign(reinterpret_cast<const char*>(&n), sizeof n);
  key.append(a);
  key.append(b);
}

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(Vocab v, pretok::Pre pre) : Tokenizer(std::move(v)), pre_(pre), ids_(build_token_map(vocab_)) {
    std::string key;
    ranks_.reserve(vocab_.merges.size());
    for (size_t i = 0; i < vocab_.merges.size(); ++i) {
      // As llama.cpp: split at the first space after the first byte; a merge without one pairs "" and "".
      const std::string& m = vocab_.merges[i];
      size_t sp = m.find(' ', 1);
      std::string_view first, second;
      if (sp != std::string::npos) {
        first = std::string_view(m).substr(0, sp);
        second = std::string_view(m).substr(sp + 1);
      }
      pair_key(key, first, second);
      ranks_.emplace(key, int(i));  // the first rank of a repeated pair wins
    }
  }

 protected:
  void encode_text(std::string_view text, std::vector<int32_t>& out) const override {
    std::string word;
    std::vector<Symbol> sym;
    std::string key;
    for (const std::string& raw : pretok::split(text, pre_)) {
      word.clear();
      for (char c : raw) word += unicode::byte_to_unicode(uint8_t(c));

      if (vocab_.ignore_merges) {
        int32_t id = find_token(ids_, word);
        if (id >= 0) {
          out.push_back(id);
          continue;
        }
      }

      sym.clear();
      for (size_t off = 0; off < word.size();) {
        size_t n = std::min(unicode::utf8_len(word[off]), word.size() - off);
        int i = int(sym.size());
        sym.push_back({i - 1, off + n == word.size() ? -1 : i + 1, off, n});
        off += n;
      }

      std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
      auto view = [&](const Symbol& s) { return std::string_view(word.data() + s.off, s.n); };
      auto try_add = [&](int l, int r) {
        if (l < 0 || r < 0) return;
        pair_key(key, view(sym[l]), view(sym[r]));
        auto it = ranks_.find(key);
        if (it == ranks_.end()) return;
        std::string t(view(sym[l]));
        t += view(sym[r]);
        queue.push({l, r, it->second, std::move(t)});
      };
      for (int i = 1; i < int(sym.size()); ++i) try_add(i - 1, i);

      while (!queue.empty()) {
        Bigram b = queue.top();
        queue.pop();
        Symbol& l = sym[b.left];
        Symbol& r = sym[b.right];
        if (l.n == 0 || r.n == 0) continue;
        if (l.n + r.n != b.text.size() || view(l) != std::string_view(b.text).substr(0, l.n) ||
            view(r) != std::string_view(b.text).substr(l.n))
          continue;
        l.n += r.n;
        r.n = 0;
        l.next = r.next;
        if (r.next >= 0) sym[r.next].prev = b.left;
        try_add(l.prev, b.left);
        try_add(b.left, l.next);
      }

      for (int i = 0; i != -1 && !sym.empty(); i = sym[i].next) {
        std::string_view piece = view(sym[i]);
        int32_t id = find_token(ids_, piece);
        if (id >= 0) {
          out.push_back(id);
          continue;
        }
        // llama.cpp's fallback: each byte of the encoded symbol as a one-byte token, if there is one.
        for (char c : piece) {
          int32_t bid = find_token(ids_, std::string_view(&c, 1));
          if (bid >= 0) out.push_back(bid);
        }
      }
    }
  }

  // llama.cpp's llama_decode_text: each codepoint back to its byte; others are marked, not dropped.
  std::string normal_piece(const std::string& text) const override {
    std::string s;
    for (uint32_t cpt : unicode::decode_utf8(text)) {
      int b = unicode::unicode_to_byte(cpt);
      if (b >= 0) {
        s += char(b);
        continue;
      }
      std::string utf8;
      unicode::append_utf8(utf8, cpt);
      s += "[UNK_BYTE_0x";
      for (char c : utf8) {
        static constexpr char kHex[] = "0123456789abcdef";
        s += kHex[uint8_t(c) >> 4];
        s += kHex[uint8_t(c) & 15];
      }
      s += text + "]";
    }
    return s;
  }

 private:
  pretok::Pre pre_;
  TokenMap ids_;
  std::unordered_map<std::string, int> ranks_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe(Vocab v, pretok::Pre pre) {
  return std::make_unique<BpeTokenizer>(std::move(v), pre);
}

}  // namespace nibble::detail
