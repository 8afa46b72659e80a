// tokenizer/byte_level.h: GPT-2's reversible mapping between bytes and printable characters.
//
// GPT-2's vocabulary files (encoder.json, vocab.bpe, and Hugging Face's ByteLevel tokenizer.json)
// spell tokens with one printable Unicode character per byte: printable Latin-1 bytes map to
// themselves, the other 68 bytes to U+0100 onwards in byte order (so the space is "Ġ", U+0120).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace strun::tokenizer {

// The character GPT-2 uses for `byte`.
char32_t ByteToChar(unsigned char byte);

// Turns a token spelled in GPT-2's characters (UTF-8 encoded) back into its bytes; nullopt when a
// character is not one of the 256.
std::optional<std::string> CharsToBytes(std::string_view spelled);

}  // namespace strun::tokenizer
