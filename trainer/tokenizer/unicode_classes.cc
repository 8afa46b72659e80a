#include "tokenizer/unicode_classes.h"

#include <algorithm>
#include <array>

namespace strun::tokenizer {
namespace {

struct CodePointRange {
  char32_t first;
  char32_t last;
};

#include "tokenizer/unicode_classes.inc"

template <size_t N>
bool InRanges(const CodePointRange (&ranges)[N], char32_t cp) {
  const auto* it =
      std::upper_bound(std::begin(ranges), std::end(ranges), cp,
                       [](char32_t v, const CodePointRange& r) { return v < r.first; });
  return it != std::begin(ranges) && cp <= (it - 1)->last;
}

// ASCII dominates real text: classify it from a table.
constexpr std::array<CharClass, 128> MakeAsciiTable() {
  std::array<CharClass, 128> t{};
  for (int c = 0; c < 128; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      t[c] = CharClass::kLetter;
    } else if (c >= '0' && c <= '9') {
      t[c] = CharClass::kNumber;
    } else if (c == ' ' || (c >= 0x09 && c <= 0x0D)) {
      t[c] = CharClass::kSpace;
    } else {
      t[c] = CharClass::kOther;
    }
  }
  return t;
}
constexpr std::array<CharClass, 128> kAscii = MakeAsciiTable();

}  // namespace

CharClass ClassifyCodePoint(char32_t cp) {
  if (cp < 128) return kAscii[cp];
  if (InRanges(kLetterRanges, cp)) return CharClass::kLetter;
  if (InRanges(kNumberRanges, cp)) return CharClass::kNumber;
  if (InRanges(kSpaceRanges, cp)) return CharClass::kSpace;
  return CharClass::kOther;
}

DecodedChar DecodeAt(std::string_view text, size_t pos) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data()) + pos;
  const size_t left = text.size() - pos;
  const unsigned char b0 = s[0];
  if (b0 < 0x80) return {b0, kAscii[b0], 1};
  auto cont = [&](size_t i) { return i < left && (s[i] & 0xC0) == 0x80; };
  char32_t cp = 0;
  uint8_t len = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF && cont(1)) {
    cp = ((b0 & 0x1Fu) << 6) | (s[1] & 0x3Fu);
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF && cont(1) && cont(2)) {
    cp = ((b0 & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
    if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) len = 3;
  } else if (b0 >= 0xF0 && b0 <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    cp = ((b0 & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
    if (cp >= 0x10000 && cp <= 0x10FFFF) len = 4;
  }
  if (len == 0) return {0xFFFD, CharClass::kOther, 1};
  return {cp, ClassifyCodePoint(cp), len};
}

}  // namespace strun::tokenizer
