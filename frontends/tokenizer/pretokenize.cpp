// Each pre-tokenizer is a list of stages, as llama.cpp's list of regexes: a stage splits every piece the
// previous stage produced (pieces are codepoint counts). Text no match covers stays a piece of its own,
// as llama.cpp's std::regex fallback keeps it. The GPT-2 and Llama 3 stages follow llama.cpp's custom
// matchers (unicode_regex_split_custom_*) step by step, quirks included; the class-run stages reproduce
// what its std::regex fallback does on the category-collapsed text.
#include "frontends/tokenizer/pretokenize.h"

#include <cstdint>

#include "frontends/tokenizer/unicode.h"

namespace nibble::pretok {
namespace {

namespace u = unicode;
using Offsets = std::vector<size_t>;

// One piece [ini, end) of the codepoints. Outside it there is no codepoint and the flags are 0, as in
// llama.cpp's _get_cpt / _get_flags.
struct Chunk {
  static constexpr uint32_t kOut = 0xFFFFFFFF;
  const std::vector<uint32_t>& cpts;
  size_t ini, end;
  uint32_t cpt(size_t p) const { return p >= ini && p < end ? cpts[p] : kOut; }
  uint16_t fl(size_t p) const { return p >= ini && p < end ? u::flags(cpts[p]) : 0; }
};

// Appends the piece ending at `end` (if not empty); returns its length.
struct Emit {
  Offsets& out;
  size_t prev;
  size_t operator()(size_t end) {
    size_t n = end - prev;
    if (n) out.push_back(n);
    prev = end;
    return n;
  }
};

bool is_ws(uint16_t f) { return f & u::WHITESPACE; }
bool is_letter(uint16_t f) { return f & u::LETTER; }
bool is_number(uint16_t f) { return f & u::NUMBER; }
uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// Category test as on llama.cpp's collapsed text: non-ASCII whitespace never matches a \p class.
bool in_category(uint32_t cpt, uint16_t cat) {
  uint16_t f = u::flags(cpt);
  return !is_ws(f) && (f & u::CATEGORIES) == cat;
}

// [\p{P}\$\+<=>\^~\|]+ (default) and [\p{P}\$\+<=>\^~\|`]+ (falcon): every ASCII punctuation or symbol
// character (but the backtick for default), and non-ASCII punctuation.
bool is_punct_class(uint32_t cpt, bool backtick) {
  if (cpt < 128) {
    bool p = (cpt >= 0x21 && cpt <= 0x2F) || (cpt >= 0x3A && cpt <= 0x40) || (cpt >= 0x5B && cpt <= 0x60) ||
             (cpt >= 0x7B && cpt <= 0x7E);
    return p && (backtick || cpt != '`');
  }
  return in_category(cpt, u::PUNCTUATION);
}

bool is_number_class(uint32_t cpt) { return cpt < 128 ? (cpt >= '0' && cpt <= '9') : in_category(cpt, u::NUMBER); }

template <class Stage>
Offsets each_chunk(const std::vector<uint32_t>& cpts, const Offsets& in, Stage stage) {
  Offsets out;
  out.reserve(in.size());
  size_t start = 0;
  for (size_t n : in) {
    stage(Chunk{cpts, start, start + n}, out);
    start += n;
  }
  return out;
}

// "[class]+": maximal runs of matching codepoints, and the runs between them.
template <class Pred>
void class_runs(const Chunk& c, Offsets& out, Pred pred) {
  size_t pos = c.ini;
  while (pos < c.end) {
    bool m = pred(c.cpts[pos]);
    size_t q = pos + 1;
    while (q < c.end && pred(c.cpts[q]) == m) ++q;
    out.push_back(q - pos);
    pos = q;
  }
}

// "[class]": each matching codepoint alone; the runs between them as pieces.
template <class Pred>
void class_singles(const Chunk& c, Offsets& out, Pred pred) {
  Emit emit{out, c.ini};
  for (size_t pos = c.ini; pos < c.end; ++pos) {
    if (pred(c.cpts[pos])) {
      emit(pos);
      emit(pos + 1);
    }
  }
  emit(c.end);
}

// "[0-9][0-9][0-9]": leftmost non-overlapping triples of ASCII digits.
void digit_triples(const Chunk& c, Offsets& out) {
  auto digit = [&](size_t p) { return c.cpts[p] >= '0' && c.cpts[p] <= '9'; };
  Emit emit{out, c.ini};
  size_t pos = c.ini;
  while (pos + 3 <= c.end) {
    if (digit(pos) && digit(pos + 1) && digit(pos + 2)) {
      emit(pos);
      emit(pos + 3);
      pos += 3;
    } else {
      ++pos;
    }
  }
  emit(c.end);
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
void gpt2(const Chunk& c, Offsets& out) {
  Emit emit{out, c.ini};
  for (size_t pos = c.ini; pos < c.end;) {
    const uint32_t cpt = c.cpt(pos);
    const uint16_t f = c.fl(pos);
    if (cpt == '\'' && pos + 1 < c.end) {
      uint32_t n1 = c.cpt(pos + 1);
      if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
        pos += emit(pos + 2);
        continue;
      }
      if (pos + 2 < c.end) {
        uint32_t n2 = c.cpt(pos + 2);
        if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
          pos += emit(pos + 3);
          continue;
        }
      }
    }
    uint16_t f2 = cpt == ' ' ? c.fl(pos + 1) : f;
    if (is_letter(f2)) {
      pos += (cpt == ' ');
      while (is_letter(f2)) f2 = c.fl(++pos);
      emit(pos);
      continue;
    }
    if (is_number(f2)) {
      pos += (cpt == ' ');
      while (is_number(f2)) f2 = c.fl(++pos);
      emit(pos);
      continue;
    }
    auto other = [](uint16_t x) { return !(is_ws(x) || is_letter(x) || is_number(x)) && x != 0; };
    if (other(f2)) {
      pos += (cpt == ' ');
      while (other(f2)) f2 = c.fl(++pos);
      emit(pos);
      continue;
    }
    size_t n_ws = 0;
    while (is_ws(c.fl(pos + n_ws))) ++n_ws;
    if (n_ws > 1 && c.cpt(pos + n_ws) != Chunk::kOut) {  // \s+(?!\S): leave the last space to the next word
      pos += n_ws - 1;
      emit(pos);
      continue;
    }
    if (n_ws > 0) {
      pos += n_ws;
      emit(pos);
      continue;
    }
    emit(++pos);
  }
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+     (Llama 3 with max_digits 3; Qwen2's regex is the same with \p{N})
void llama3(const Chunk& c, Offsets& out, size_t max_digits) {
  Emit emit{out, c.ini};
  for (size_t pos = c.ini; pos < c.end;) {
    const uint32_t cpt = c.cpt(pos);
    const uint16_t f = c.fl(pos);
    // Only ASCII letters lower-case to s/t/r/v/m/l/d/e, so ASCII folding is llama.cpp's unicode_tolower here.
    if (cpt == '\'' && pos + 1 < c.end) {
      uint32_t n1 = ascii_lower(c.cpt(pos + 1));
      if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
        pos += emit(pos + 2);
        continue;
      }
      if (pos + 2 < c.end) {
        uint32_t n2 = ascii_lower(c.cpt(pos + 2));
        if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
          pos += emit(pos + 3);
          continue;
        }
      }
    }
    if (!(cpt == '\r' || cpt == '\n' || is_number(f))) {
      if (is_letter(f) || is_letter(c.fl(pos + 1))) {
        ++pos;
        while (is_letter(c.fl(pos))) ++pos;
        emit(pos);
        continue;
      }
    }
    if (is_number(f)) {
      size_t ini = pos;
      while (is_number(c.fl(pos))) {
        if (++pos - ini >= max_digits) {
          emit(pos);
          ini = pos;
        }
      }
      emit(pos);
      continue;
    }
    uint16_t f2 = cpt == ' ' ? c.fl(pos + 1) : f;
    auto other = [](uint16_t x) { return !(is_ws(x) || is_letter(x) || is_number(x)); };
    if (other(f2) && f != 0) {
      pos += (cpt == ' ');
      while (other(f2) && f2 != 0) f2 = c.fl(++pos);
      uint32_t c2 = c.cpt(pos);
      while (c2 == '\r' || c2 == '\n') c2 = c.cpt(++pos);
      emit(pos);
      continue;
    }
    size_t n_ws = 0, last_crlf_end = 0;
    while (is_ws(c.fl(pos + n_ws))) {
      uint32_t c2 = c.cpt(pos + n_ws);
      if (c2 == '\r' || c2 == '\n') last_crlf_end = pos + n_ws + 1;
      ++n_ws;
    }
    if (last_crlf_end > 0) {  // \s*[\r\n]+
      pos = last_crlf_end;
      emit(pos);
      continue;
    }
    if (n_ws > 1 && c.cpt(pos + n_ws) != Chunk::kOut) {
      pos += n_ws - 1;
      emit(pos);
      continue;
    }
    if (n_ws > 0) {
      pos += n_ws;
      emit(pos);
      continue;
    }
    emit(++pos);
  }
}

}  // namespace

std::optional<Pre> pre_from_name(std::string_view name) {
  if (name.empty() || name == "default") return Pre::Default;
  for (std::string_view n : {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "mpt",
                             "olmo", "jais"})
    if (name == n) return Pre::Gpt2;
  if (name == "falcon") return Pre::Falcon;
  for (std::string_view n : {"llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe"})
    if (name == n) return Pre::Llama3;
  for (std::string_view n : {"qwen2", "deepseek-r1-qwen", "stablelm2"})
    if (name == n) return Pre::Qwen2;
  for (std::string_view n : {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"})
    if (name == n) return Pre::StarCoder;
  return std::nullopt;
}

std::vector<std::string> split(std::string_view text, Pre pre) {
  const std::vector<uint32_t> cpts = unicode::decode_utf8(text);
  Offsets offs;
  if (!cpts.empty()) offs.push_back(cpts.size());

  auto punct = [&](bool backtick) {
    offs = each_chunk(cpts, offs, [&](const Chunk& c, Offsets& o) {
      class_runs(c, o, [&](uint32_t x) { return is_punct_class(x, backtick); });
    });
  };
  auto gpt2_stage = [&] { offs = each_chunk(cpts, offs, gpt2); };
  auto triples = [&] { offs = each_chunk(cpts, offs, digit_triples); };

  switch (pre) {
    case Pre::Default:
      punct(false);
      gpt2_stage();
      offs = each_chunk(cpts, offs, [](const Chunk& c, Offsets& o) { class_runs(c, o, is_number_class); });
      triples();
      break;
    case Pre::Gpt2:
      gpt2_stage();
      break;
    case Pre::Falcon:
      punct(true);
      gpt2_stage();
      triples();
      break;
    case Pre::Llama3:
      offs = each_chunk(cpts, offs, [](const Chunk& c, Offsets& o) { llama3(c, o, 3); });
      break;
    case Pre::Qwen2:
      offs = each_chunk(cpts, offs, [](const Chunk& c, Offsets& o) { llama3(c, o, 1); });
      break;
    case Pre::StarCoder:
      offs = each_chunk(cpts, offs, [](const Chunk& c, Offsets& o) { class_singles(c, o, is_number_class); });
      gpt2_stage();
      break;
  }

  std::vector<std::string> words;
  words.reserve(offs.size());
  size_t start = 0;
  for (size_t n : offs) {
    std::string& w = words.emplace_back();
    for (size_t i = start; i < start + n; ++i) unicode::append_utf8(w, cpts[i]);
    start += n;
  }
  return words;
}

}  // namespace nibble::pretok
