// tokenizer/unicode_classes.h: the character classes GPT-2's pre-tokenization regex uses.
//
// The pattern 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ needs to
// know, for each code point, whether it is a letter (\p{L}), a number (\p{N}), white space (\s) or
// none of these. The tables (unicode_classes.inc) are generated from node's regular expression
// engine by gen_unicode_classes.js, so they agree with js-tiktoken, our reference, code point for
// code point. \s is JavaScript's: Unicode White_Space minus U+0085, plus U+FEFF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace strun::tokenizer {

enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

// The class of a Unicode code point (kOther outside the three sets).
CharClass ClassifyCodePoint(char32_t cp);

// One decoded code point: its value, class and length in bytes.
struct DecodedChar {
  char32_t cp;
  CharClass cls;
  uint8_t length;
};

// Decodes the UTF-8 sequence at text[pos] (pos < text.size()). A byte that does not start a valid,
// shortest-form sequence decodes as a single byte of class kOther, so every input splits into
// pieces whose bytes are exactly the input's.
DecodedChar DecodeAt(std::string_view text, size_t pos);

}  // namespace strun::tokenizer
