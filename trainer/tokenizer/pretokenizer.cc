#include "tokenizer/pretokenizer.h"

#include "tokenizer/unicode_classes.h"

namespace strun::tokenizer {
namespace {

// Length of a contraction ('s 't 're 've 'm 'll 'd) at text[pos] (an apostrophe), or 0.
size_t ContractionLength(std::string_view text, size_t pos) {
  if (pos + 1 >= text.size()) return 0;
  const char c1 = text[pos + 1];
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (pos + 2 >= text.size()) return 0;
  const char c2 = text[pos + 2];
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

// End of the run of characters of class `cls` starting at `pos`.
size_t RunEnd(std::string_view text, size_t pos, CharClass cls) {
  while (pos < text.size()) {
    const DecodedChar c = DecodeAt(text, pos);
    if (c.cls != cls) break;
    pos += c.length;
  }
  return pos;
}

}  // namespace

void SplitGpt2(std::string_view text, std::vector<std::string_view>* pieces) {
  size_t pos = 0;
  const size_t n = text.size();
  while (pos < n) {
    const DecodedChar c0 = DecodeAt(text, pos);
    size_t end = 0;
    if (text[pos] == '\'') end = pos + ContractionLength(text, pos);
    if (end <= pos) {
      if (c0.cls != CharClass::kSpace) {
        // \p{L}+, \p{N}+ or [^\s\p{L}\p{N}]+: a run of one class.
        end = RunEnd(text, pos + c0.length, c0.cls);
      } else {
        // " ?X+" where a single U+0020 is followed by a non-space X.
        if (text[pos] == ' ' && pos + 1 < n) {
          const DecodedChar c1 = DecodeAt(text, pos + 1);
          if (c1.cls != CharClass::kSpace) end = RunEnd(text, pos + 1 + c1.length, c1.cls);
        }
        if (end <= pos) {
          // \s+(?!\S) then \s+: a space run reaching the end is taken whole; one followed by a
          // non-space gives up its last character unless that would leave nothing.
          size_t last_start = pos;
          size_t p = pos;
          while (p < n) {
            const DecodedChar c = DecodeAt(text, p);
            if (c.cls != CharClass::kSpace) break;
            last_start = p;
            p += c.length;
          }
          end = (p < n && last_start > pos) ? last_start : p;
        }
      }
    }
    pieces->push_back(text.substr(pos, end - pos));
    pos = end;
  }
}

}  // namespace strun::tokenizer
