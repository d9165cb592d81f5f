// Shared description of the legacy 32-element formats (q4_0, q4_1, q5_0, q5_1, q8_0, q8_1):
// which features a block has, and how the level of element j is stored. Used by the codecs
// (legacy_quants.cpp) and the dot products (vec_dot.cpp).
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "ir/formats/block_layouts.h"

namespace nibble::formats::legacy {

// A block with a min `m` decodes as d * q + m ("affine"); the others as d * (q - kOffset).
template <class B> inline constexpr bool kAffine = requires(const B& b) { b.m; };
// A block with `qh` stores a fifth level bit.
template <class B> inline constexpr bool kFiveBit = requires(const B& b) { b.qh; };
// A block whose qs are int8 stores one signed byte per element (q8_0, q8_1).
template <class B> inline constexpr bool kEightBit =
    std::is_same_v<std::remove_cvref_t<decltype(std::declval<B>().qs[0])>, int8_t>;

template <class B> inline constexpr int kBits = kEightBit<B> ? 8 : kFiveBit<B> ? 5 : 4;
template <class B> inline constexpr int kMaxLevel = (1 << kBits<B>) - 1;
// Level offset of the symmetric nibble formats (8 for q4_0, 16 for q5_0); 0 where levels are signed
// or the format has a min.
template <class B> inline constexpr int kOffset = (kEightBit<B> || kAffine<B>) ? 0 : 1 << (kBits<B> - 1);

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Stored unsigned level of element j of a nibble block (4 or 5 bits).
template <class B>
inline int nibble_level(const B& b, int j) {
  static_assert(!kEightBit<B>);
  int q = j < kQK / 2 ? (b.qs[j] & 0x0F) : (b.qs[j - kQK / 2] >> 4);
  if constexpr (kFiveBit<B>) q |= int((load_u32(b.qh) >> j) & 1u) << 4;
  return q;
}

// Signed integer value of element j: q - kOffset (the "x / d" of the symmetric formats, the raw
// level of the affine ones, the stored byte of the 8-bit ones).
template <class B>
inline int int_value(const B& b, int j) {
  if constexpr (kEightBit<B>) return b.qs[j];
  else return nibble_level(b, j) - kOffset<B>;
}

}  // namespace nibble::formats::legacy
