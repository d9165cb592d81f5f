#include "frontends/tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace nibble::unicode {
namespace {

struct Range {
  uint32_t first;
  uint16_t flags;
};

constexpr Range kRanges[] = {
#include "frontends/tokenizer/unicode_tables.inc"
};

// ASCII is looked up on every character of typical text: keep a direct table for it.
const std::array<uint16_t, 128>& ascii_flags() {
  static const std::array<uint16_t, 128> table = [] {
    std::array<uint16_t, 128> t{};
    for (uint32_t c = 0; c < 128; ++c) {
      auto it = std::upper_bound(std::begin(kRanges), std::end(kRanges), c,
                                 [](uint32_t v, const Range& r) { return v < r.first; });
      t[c] = std::prev(it)->flags;
    }
    return t;
  }();
  return table;
}

struct ByteMaps {
  std::array<std::string, 256> to_unicode;
  std::array<int16_t, 512> from_unicode;  // mapped codepoints are all below 0x200
};

const ByteMaps& byte_maps() {
  static const ByteMaps maps = [] {
    ByteMaps m;
    m.from_unicode.fill(-1);
    auto printable = [](int b) {
      return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      uint32_t cpt = printable(b) ? uint32_t(b) : next++;
      append_utf8(m.to_unicode[b], cpt);
      m.from_unicode[cpt] = int16_t(b);
    }
    return m;
  }();
  return maps;
}

}  // namespace

uint16_t flags(uint32_t cpt) {
  if (cpt < 128) return ascii_flags()[cpt];
  if (cpt > 0x10FFFF) return UNDEFINED;
  auto it = std::upper_bound(std::begin(kRanges), std::end(kRanges), cpt,
                             [](uint32_t v, const Range& r) { return v < r.first; });
  return std::prev(it)->flags;
}

std::vector<uint32_t> decode_utf8(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  auto cont = [&](size_t i) { return i < s.size() && (uint8_t(s[i]) & 0xC0) == 0x80; };
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t b = uint8_t(s[i]);
    uint32_t cpt = kReplacement;
    size_t n = 1;
    if (b < 0x80) {
      cpt = b;
    } else if ((b & 0xE0) == 0xC0 && cont(i + 1)) {
      cpt = (uint32_t(b & 0x1F) << 6) | (uint8_t(s[i + 1]) & 0x3F);
      n = 2;
    } else if ((b & 0xF0) == 0xE0 && cont(i + 1) && cont(i + 2)) {
      cpt = (uint32_t(b & 0x0F) << 12) | (uint32_t(uint8_t(s[i + 1]) & 0x3F) << 6) | (uint8_t(s[i + 2]) & 0x3F);
      n = 3;
    } else if ((b & 0xF8) == 0xF0 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
      cpt = (uint32_t(b & 0x07) << 18) | (uint32_t(uint8_t(s[i + 1]) & 0x3F) << 12) |
            (uint32_t(uint8_t(s[i + 2]) & 0x3F) << 6) | (uint8_t(s[i + 3]) & 0x3F);
      n = 4;
      if (cpt > 0x10FFFF) cpt = kReplacement;
    }
    out.push_back(cpt);
    i += n;
  }
  return out;
}

void append_utf8(std::string& out, uint32_t cpt) {
  if (cpt < 0x80) {
    out += char(cpt);
  } else if (cpt < 0x800) {
    out += char(0xC0 | (cpt >> 6));
    out += char(0x80 | (cpt & 0x3F));
  } else if (cpt < 0x10000) {
    out += char(0xE0 | (cpt >> 12));
    out += char(0x80 | ((cpt >> 6) & 0x3F));
    out += char(0x80 | (cpt & 0x3F));
  } else if (cpt <= 0x10FFFF) {
    out += char(0xF0 | (cpt >> 18));
    out += char(0x80 | ((cpt >> 12) & 0x3F));
    out += char(0x80 | ((cpt >> 6) & 0x3F));
    out += char(0x80 | (cpt & 0x3F));
  } else {
    append_utf8(out, kReplacement);
  }
}

const std::string& byte_to_unicode(uint8_t byte) { return byte_maps().to_unicode[byte]; }

int unicode_to_byte(uint32_t cpt) {
  return cpt < byte_maps().from_unicode.size() ? byte_maps().from_unicode[cpt] : -1;
}

}  // namespace nibble::unicode
