// Internal: wire constants and helpers shared by the coordination client and server.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "strun/clock.h"  // MonoSeconds for deadlines
#include "strun/result.h"

namespace strun::launcher {

inline constexpr std::string_view kMagic = "STRUNC1\n";  // server greeting, then a 32-byte nonce
inline constexpr std::string_view kHelloMagic = "STRUNH1\n";  // client hello
inline constexpr uint32_t kMaxFrame = 16u << 20;
inline constexpr size_t kHelloSize = 8 + 32 + 4 + 32;

std::string FrameMac(const std::string& key, char direction, uint64_t seq,
                     std::string_view payload);
std::string HelloMac(const std::string& key, const std::string& nonce_s, const std::string& nonce_c,
                     uint32_t agent);
std::string WelcomeMac(const std::string& key, const std::string& nonce_s,
                       const std::string& nonce_c, uint32_t agent);
std::string SessionKey(const std::string& key, const std::string& nonce_s,
                       const std::string& nonce_c);
Status WriteFully(int fd, const std::string& data);
// TCP keep-alive and a user timeout, so that a peer whose node vanished (no FIN ever comes) is
// noticed within ~15 s on an idle connection.
void EnableKeepalive(int fd);

}  // namespace strun::launcher
