// strun/launcher/crypto.h: the little cryptography the coordination service needs.
//
// SHA-256 and HMAC-SHA-256 (FIPS 180-4, RFC 2104) so that agents can prove they hold the job's
// secret without sending it, and random bytes from the kernel (getrandom). Kept in-tree and tiny
// so that strun links no crypto library and starts in milliseconds.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "strun/result.h"

namespace strun::launcher {

using Digest = std::array<uint8_t, 32>;

Digest Sha256(std::string_view data);
Digest HmacSha256(std::string_view key, std::string_view message);

// Constant-time comparison, so that a peer cannot learn a MAC byte by byte from timings.
bool DigestEqual(std::string_view a, std::string_view b);

// `n` bytes from getrandom(2).
Result<std::string> RandomBytes(size_t n);

std::string ToHex(std::string_view bytes);
inline std::string DigestBytes(const Digest& d) { return std::string(d.begin(), d.end()); }

}  // namespace strun::launcher
