// Framed, authenticated messages and the client side of the handshake (coordination.h).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "coord_wire.h"
#include "strun/launcher/coord_service.h"
#include "strun/launcher/crypto.h"

namespace strun::launcher {

std::string FrameMac(const std::string& key, char direction, uint64_t seq,
                     std::string_view payload) {
  std::string m(1, direction);
  for (int i = 7; i >= 0; --i) m.push_back(char(seq >> (8 * i)));
  m.append(payload);
  return DigestBytes(HmacSha256(key, m));
}

std::string HelloMac(const std::string& key, const std::string& nonce_s, const std::string& nonce_c,
                     uint32_t agent) {
  return DigestBytes(HmacSha256(key, "hello|" + nonce_s + nonce_c + std::to_string(agent)));
}
std::string WelcomeMac(const std::string& key, const std::string& nonce_s,
                       const std::string& nonce_c, uint32_t agent) {
  return DigestBytes(HmacSha256(key, "welcome|" + nonce_c + nonce_s + std::to_string(agent)));
}
std::string SessionKey(const std::string& key, const std::string& nonce_s,
                       const std::string& nonce_c) {
  return DigestBytes(HmacSha256(key, "session|" + nonce_s + nonce_c));
}

Status WriteFully(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t w = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        pollfd p{fd, POLLOUT, 0};
        if (poll(&p, 1, 5000) <= 0) return MakeError("coordination connection: send timed out");
        continue;
      }
      return MakeError(std::string("coordination connection: ") + std::strerror(errno));
    }
    off += size_t(w);
  }
  return {};
}

// Reads exactly n bytes before `deadline` (MonoSeconds()).
Result<std::string> ReadExactly(int fd, size_t n, double deadline) {
  std::string out;
  while (out.size() < n) {
    double left = deadline - MonoSeconds();
    if (left <= 0) return MakeError("timed out");
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, int(left * 1000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return MakeError("timed out");
    char buf[256];
    ssize_t got = recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) return MakeError("connection closed");
    out.append(buf, size_t(got));
  }
  return out;
}

Channel::Channel(int fd, std::string session_key, bool is_server)
    : fd_(fd), key_(std::move(session_key)), is_server_(is_server) {}

Channel::~Channel() {
  if (fd_ >= 0) close(fd_);
}

Status Channel::Send(const Json& message) {
  std::string payload = message.dump();
  std::string frame;
  uint32_t len = uint32_t(payload.size());
  for (int i = 3; i >= 0; --i) frame.push_back(char(len >> (8 * i)));
  frame += payload;
  frame += FrameMac(key_, is_server_ ? 'S' : 'C', send_seq_++, payload);
  return WriteFully(fd_, frame);
}

bool Channel::ReadAvailable(std::string* why) {
  for (;;) {
    char buf[65536];
    ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      *why = std::strerror(errno);
      return false;
    }
    if (n == 0) {
      *why = "connection closed";
      return false;
    }
    in_.append(buf, size_t(n));
    if (size_t(n) < sizeof buf) break;
  }
  while (in_.size() >= 4) {
    uint32_t len = uint32_t(uint8_t(in_[0])) << 24 | uint32_t(uint8_t(in_[1])) << 16 |
                   uint32_t(uint8_t(in_[2])) << 8 | uint32_t(uint8_t(in_[3]));
    if (len > kMaxFrame) {
      *why = "oversized message";
      return false;
    }
    if (in_.size() < 4 + len + 32) break;
    std::string payload = in_.substr(4, len);
    std::string mac = in_.substr(4 + len, 32);
    in_.erase(0, 4 + len + 32);
    if (!DigestEqual(mac, FrameMac(key_, is_server_ ? 'C' : 'S', recv_seq_++, payload))) {
      *why = "message failed authentication";
      return false;
    }
    auto j = Json::parse(payload, nullptr, false);
    if (j.is_discarded()) {
      *why = "malformed message";
      return false;
    }
    queue_.push_back(std::move(j));
  }
  return true;
}

std::optional<Json> Channel::Next() {
  if (queue_.empty()) return std::nullopt;
  Json j = std::move(queue_.front());
  queue_.erase(queue_.begin());
  return j;
}

void EnableKeepalive(int fd) {
  int on = 1, idle = 5, interval = 2, count = 3;
  unsigned user_timeout_ms = 15000;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
}

namespace {

// Non-blocking connect with a timeout. Returns the fd or -1 (errno-like reason in *why).
int ConnectTcp(const std::string& host, int port, double timeout_s, std::string* why) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) {
    *why = "cannot resolve " + host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, int(timeout_s * 1000)) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) break;
        *why = std::strerror(err);
      } else {
        *why = "connect timed out";
      }
    } else {
      *why = std::strerror(errno);
    }
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    EnableKeepalive(fd);
  }
  return fd;
}

}  // namespace

Result<std::unique_ptr<Channel>> ConnectToCoordinator(const std::string& host,
                                                      const std::vector<int>& ports,
                                                      const std::string& key, int agent_index,
                                                      double timeout_s) {
  const double deadline = MonoSeconds() + timeout_s;
  std::string last_why = "no answer";
  bool rejected = false;
  int backoff_ms = 5;
  while (MonoSeconds() < deadline) {
    for (int port : ports) {
      int fd = ConnectTcp(host, port, 1.0, &last_why);
      if (fd < 0) continue;
      double hs_deadline = std::min(deadline, MonoSeconds() + 3.0);
      auto greeting = ReadExactly(fd, kMagic.size() + 32, hs_deadline);
      if (!greeting || greeting->compare(0, kMagic.size(), kMagic) != 0) {
        close(fd);
        continue;  // not a strun service (or one that went away)
      }
      std::string nonce_s = greeting->substr(kMagic.size());
      auto nonce_c = RandomBytes(32);
      if (!nonce_c) {
        close(fd);
        return nonce_c.error();
      }
      std::string hello = std::string(kHelloMagic) + *nonce_c;
      for (int i = 3; i >= 0; --i) hello.push_back(char(uint32_t(agent_index) >> (8 * i)));
      hello += HelloMac(key, nonce_s, *nonce_c, uint32_t(agent_index));
      if (!WriteFully(fd, hello)) {
        close(fd);
        continue;
      }
      auto welcome = ReadExactly(fd, 32, hs_deadline);
      if (!welcome) {
        rejected = true;  // a strun service of another job (or another secret)
        close(fd);
        continue;
      }
      if (!DigestEqual(*welcome, WelcomeMac(key, nonce_s, *nonce_c, uint32_t(agent_index)))) {
        rejected = true;
        close(fd);
        continue;
      }
      return std::make_unique<Channel>(fd, SessionKey(key, nonce_s, *nonce_c), /*is_server=*/false);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, 200);
  }
  std::string port_list;
  for (size_t i = 0; i < ports.size() && i < 4; ++i)
    port_list += (i ? "," : "") + std::to_string(ports[i]);
  if (ports.size() > 4) port_list += ",...";
  std::string msg = "strun: could not join the job's coordination service on " + host + " (ports " +
                    port_list + ") within " + std::to_string(int(timeout_s)) + " s: " + last_why +
                    ".";
  if (rejected)
    msg +=
        " A service answered but did not accept this agent: every node must have the same secret "
        "(STRUN_JOB_SECRET, or the same ~/.strun/secret / STRUN_SECRET_FILE).";
  else
    msg +=
        " Is strun running on the first node (agent 0)? Raise the limit with --rdzv-conf "
        "join_timeout=SECONDS.";
  return MakeError(msg);
}

Result<int> FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return MakeError(std::string("strun: socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    close(fd);
    return MakeError(std::string("strun: cannot find a free port: ") + std::strerror(e));
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return int(ntohs(a.sin_port));
}

}  // namespace strun::launcher
