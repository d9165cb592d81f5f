// SentencePiece-style tokenizer (tokenizer.ggml.model = "llama"), as llama.cpp's llm_tokenizer_spm:
// spaces become U+2581, then adjacent symbols merge greedily by the score of the token they form.
#include <array>
#include <cstdio>
#include <queue>

#include "frontends/tokenizer/models.h"
#include "frontends/tokenizer/unicode.h"

namespace nibble::detail {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

struct Symbol {
  int prev, next;
  size_t off, n;  // bytes of the escaped text; n == 0 once merged into the left neighbour
};

struct Bigram {
  int left, right;
  float score;
  size_t size;
};

// Highest score first; on equal scores the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class SpmTokenizer final : public Tokenizer {
 public:
  explicit SpmTokenizer(Vocab v) : Tokenizer(std::move(v)), ids_(build_token_map(vocab_)) {
    prefix_space_ = vocab_.add_space_prefix;
    for (int b = 0; b < 256; ++b) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "<0x%02X>", b);
      int32_t id = find_token(ids_, hex);
      // llama.cpp's byte_to_token falls back to the byte itself as a token text.
      if (id < 0) id = find_token(ids_, std::string_view(reinterpret_cast<const char*>(&b), 1));
      byte_ids_[b] = id >= 0 ? id : vocab_.unk;
    }
  }

 protected:
  void encode_text(std::string_view raw, std::vector<int32_t>& out) const override {
    std::string text;
    text.reserve(raw.size() + raw.size() / 4);
    for (char c : raw) {
      if (c == ' ') text += kSpace;
      else text += c;
    }

    // One symbol per UTF-8 character (a malformed lead byte still claims its announced length).
    std::vector<Symbol> sym;
    for (size_t off = 0; off < text.size();) {
      size_t n = std::min(unicode::utf8_len(text[off]), text.size() - off);
      int i = int(sym.size());
      sym.push_back({i - 1, off + n == text.size() ? -1 : i + 1, off, n});
      off += n;
    }
    if (sym.empty()) return;

    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    auto try_add = [&](int l, int r) {
      if (l < 0 || r < 0) return;
      std::string_view piece(text.data() + sym[l].off, sym[l].n + sym[r].n);
      int32_t id = find_token(ids_, piece);
      if (id < 0) return;
      queue.push({l, r, vocab_.scores[id], piece.size()});
    };
    for (int i = 1; i < int(sym.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
      Bigram b = queue.top();
      queue.pop();
      Symbol& l = sym[b.left];
      Symbol& r = sym[b.right];
      if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale: a side was merged since
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }

    // Every merged symbol is a token (pairs are only queued when they form one), so llama.cpp's
    // re-segmentation through its merge history never applies: a symbol is a token or falls back to bytes.
    for (int i = 0; i != -1; i = sym[i].next) {
      std::string_view piece(text.data() + sym[i].off, sym[i].n);
      int32_t id = find_token(ids_, piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      for (char c : piece) {
        int32_t bid = byte_ids_[uint8_t(c)];
        if (bid >= 0) out.push_back(bid);
      }
    }
  }

  std::string normal_piece(const std::string& text) const override {
    std::string s;
    s.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, kSpace.size(), kSpace) == 0) {
        s += ' ';
        i += kSpace.size();
      } else {
        s += text[i++];
      }
    }
    return s;
  }

 private:
  TokenMap ids_;
  std::array<int32_t, 256> byte_ids_{};
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm(Vocab v) { return std::make_unique<SpmTokenizer>(std::move(v)); }

}  // namespace nibble::detail
