#include "frontends/synth/vocab_gen.h"

#include <string_view>
#include <unordered_set>

#include <fmt/format.h>

#include "support/error.h"

namespace nibble::synth {

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space
constexpr int64_t kMaxVocab = 262144;

// Common English words, roughly by frequency (with the words of children's stories).
constexpr std::string_view kWords[] = {
    "the", "and", "to", "a", "was", "he", "she", "it", "of", "in", "they", "her", "his", "you", "said", "with",
    "on", "that", "for", "is", "i", "had", "but", "at", "so", "were", "one", "day", "there", "be", "not", "up",
    "all", "what", "very", "time", "him", "them", "little", "we", "once", "upon", "big", "saw", "play", "happy",
    "wanted", "friend", "friends", "mom", "can", "do", "go", "have", "from", "this", "out", "are", "as", "will",
    "an", "by", "my", "me", "no", "if", "or", "then", "when", "their", "who", "did", "would", "could", "see",
    "like", "get", "made", "make", "came", "come", "went", "about", "into", "your", "just", "now", "how", "some",
    "more", "other", "after", "back", "again", "away", "down", "over", "too", "new", "good", "old", "man", "boy",
    "girl", "dog", "cat", "bird", "tree", "park", "ball", "sun", "home", "house", "toy", "fun", "help", "look",
    "felt", "found", "named", "loved", "smiled", "asked", "thought", "knew", "decided", "started", "ran", "jumped",
    "tried", "looked", "hello", "world", "yes", "thank", "sorry", "please", "sad", "kind", "nice", "red", "blue",
    "green", "small", "long", "each", "every", "many", "much", "because", "where", "why", "which", "than", "its",
    "our", "been", "has", "only", "first", "last", "two", "three", "people", "way", "water", "word", "words",
    "find", "know", "take", "give", "think", "say", "tell", "work", "year", "years", "thing", "things", "school",
    "story", "under", "while", "before", "around", "always", "never", "something", "everyone", "together", "inside",
    "outside", "best", "better", "love", "sky", "car", "fish", "food", "cake", "mother", "father", "family",
    "name", "hand", "head", "eyes", "door", "room", "garden", "flower", "flowers", "animal", "animals", "rabbit",
    "bear", "lion", "dragon", "king", "queen", "princess", "magic", "forest", "river", "night", "morning", "lily",
    "tom", "tim", "ben", "sue", "anna", "sam", "max", "mia", "should", "any", "these", "those", "such", "own",
    "same", "through", "still", "also", "here", "well", "even", "want", "need", "feel", "keep", "let", "put",
    "because", "should", "number", "part", "place", "right", "left", "great", "high", "low", "open", "close",
};
constexpr std::string_view kSuffixes[] = {"ing", "ed", "er", "ly", "es", "est", "tion", "ment", "ness", "ful",
                                          "less", "able", "ous", "ive", "al", "en", "ers", "ings", "ies", "ied"};
constexpr std::string_view kOnsets[] = {"", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s",
                                        "t", "v", "w", "y", "z", "th", "sh", "ch", "st", "tr", "br", "pl", "cr",
                                        "gr", "fl", "sp", "wh"};
constexpr std::string_view kVowels[] = {"a", "e", "i", "o", "u", "ee", "oo", "ai", "ou", "ea", "ay", "ie"};
constexpr std::string_view kCodas[] = {"", "n", "t", "r", "s", "l", "d", "m", "ng", "st", "ck", "nd", "p", "k"};

size_t utf8_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

class Builder {
 public:
  explicit Builder(int64_t n_vocab) : n_(n_vocab) {}
  bool full() const { return int64_t(v_.tokens.size()) >= n_; }

  void special(std::string text, int32_t type) {
    seen_.insert(text);
    v_.tokens.push_back(std::move(text));
    v_.scores.push_back(0.0f);
    v_.types.push_back(type);
  }
  // Adds `piece` and, first, every shorter prefix of it (whole UTF-8 characters) not yet present.
  void chain(std::string_view piece) {
    for (size_t end = 0; end < piece.size() && !full();) {
      end += utf8_len(static_cast<unsigned char>(piece[end]));
      add(std::string(piece.substr(0, std::min(end, piece.size()))));
    }
  }
  SpmVocab take() { return std::move(v_); }

 private:
  void add(std::string piece) {
    if (full() || !seen_.insert(piece).second) return;
    v_.tokens.push_back(std::move(piece));
    v_.scores.push_back(-float(n_normal_++));  // the earlier (more frequent-looking), the higher
    v_.types.push_back(1);
  }
  int64_t n_;
  int64_t n_normal_ = 0;
  SpmVocab v_;
  std::unordered_set<std::string> seen_;
};

std::string capitalized(std::string_view w) {
  std::string r(w);
  if (!r.empty() && r[0] >= 'a' && r[0] <= 'z') r[0] = char(r[0] - 'a' + 'A');
  return r;
}

}  // namespace

SpmVocab make_spm_vocab(int64_t n_vocab) {
  if (n_vocab < kMinVocab || n_vocab > kMaxVocab)
    fail("vocabulary size {} is out of range ({} to {})", n_vocab, kMinVocab, kMaxVocab);
  Builder b(n_vocab);
  b.special("<unk>", 2);
  b.special("<s>", 3);
  b.special("</s>", 3);
  for (int c = 0; c < 256; ++c) b.special(fmt::format("<0x{:02X}>", c), 6);

  const std::string sp(kSpace);
  b.chain(sp);
  for (char c : std::string_view("etaoinshrdlcumwfgypbvkjxqzETAOINSHRDLCUMWFGYPBVKJXQZ0123456789.,'!?\"-:;()"))
    b.chain(std::string(1, c));
  // Frequent words with the leading space, then bare and capitalized forms, then endings.
  for (std::string_view w : kWords) b.chain(sp + std::string(w));
  for (std::string_view w : kWords) b.chain(sp + capitalized(w));
  for (std::string_view w : kWords) b.chain(w);
  for (std::string_view s : kSuffixes) b.chain(s);

  // Syllables, then pairs of them in a scrambled but fixed order, until the vocabulary is full.
  std::vector<std::string> syl;
  for (std::string_view v : kVowels)
    for (std::string_view o : kOnsets)
      for (std::string_view c : kCodas) syl.push_back(std::string(o) + std::string(v) + std::string(c));
  for (const std::string& s : syl) {
    b.chain(sp + s);
    b.chain(s);
  }
  const uint64_t n = syl.size();
  for (uint64_t k = 0; !b.full() && k < n * n; ++k) {
    const std::string& a = syl[k % n];
    const std::string& c = syl[(k / n + k * 7919) % n];
    b.chain(sp + a + c);
    b.chain(a + c);
  }
  if (!b.full()) fail("vocabulary size {}: the generator ran out of pieces", n_vocab);
  return b.take();
}

}  // namespace nibble::synth
