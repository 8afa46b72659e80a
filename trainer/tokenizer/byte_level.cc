#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/unicode_classes.h"

namespace strun::tokenizer {
namespace {

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<int, 324> to_byte{};  // characters 0..U+0143; -1 where none
};

const Tables& GetTables() {
  static const Tables tables = [] {
    Tables t;
    t.to_byte.fill(-1);
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      t.to_char[b] = printable(b) ? char32_t(b) : char32_t(256 + next++);
      t.to_byte[t.to_char[b]] = b;
    }
    return t;
  }();
  return tables;
}

}  // namespace

char32_t ByteToChar(unsigned char byte) { return GetTables().to_char[byte]; }

std::optional<std::string> CharsToBytes(std::string_view spelled) {
  const Tables& t = GetTables();
  std::string out;
  out.reserve(spelled.size());
  for (size_t pos = 0; pos < spelled.size();) {
    const DecodedChar c = DecodeAt(spelled, pos);
    if (c.length == 1 && static_cast<unsigned char>(spelled[pos]) >= 0x80) return std::nullopt;
    if (c.cp >= t.to_byte.size() || t.to_byte[c.cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(t.to_byte[c.cp]));
    pos += c.length;
  }
  return out;
}

}  // namespace strun::tokenizer
