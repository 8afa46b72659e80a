// The coordination service (coord_service.h), hosted by agent 0 or strund: one thread, one poll
// loop.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "coord_wire.h"
#include "strun/launcher/coord_service.h"
#include "strun/launcher/crypto.h"

namespace strun::launcher {
namespace {

struct Conn {
  int fd = -1;
  std::string nonce;  // server nonce sent in the greeting
  std::string hello;  // bytes of the hello received so far
  int agent = -1;     // set once authenticated
  std::unique_ptr<Channel> channel;
  double accepted_at = 0;
  uint32_t peer = 0;  // IPv4 address, network order
};

// Connections that have not authenticated cost a descriptor each and prove nothing; anyone who
// can reach the port can open them. So (coordination.h): at most kMaxPending at a time, at most
// kMaxPendingPerPeer from one address, each closed kHandshakeTimeoutS after it was accepted, and
// none while fewer than FdReserve() descriptors are free, which the agent needs for a restart.
// A refused agent's connection is closed at once and it tries again (ConnectToCoordinator).
constexpr size_t kMaxPending = 256;
constexpr size_t kMaxPendingPerPeer = 32;
constexpr double kHandshakeTimeoutS = 5;

// Descriptors kept free: an eighth of the soft limit, at least 64 (pipes, sockets and log files
// of a restart's workers).
long FdReserve(long* limit) {
  rlimit r{};
  *limit = getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY ? long(r.rlim_cur)
                                                                            : 1L << 20;
  return std::max(64L, *limit / 8);
}

bool AdmitUnauthenticated(int fd, uint32_t peer, const std::vector<std::unique_ptr<Conn>>& conns) {
  size_t pending = 0, from_peer = 0;
  for (const auto& c : conns)
    if (c->fd >= 0 && !c->channel) {
      ++pending;
      from_peer += c->peer == peer;
    }
  // accept() returns the lowest free descriptor, so every one below fd is in use and at most
  // limit - fd - 1 are free.
  long limit = 0;
  const long reserve = FdReserve(&limit);
  return pending < kMaxPending && from_peer < kMaxPendingPerPeer && fd < limit - reserve;
}

}  // namespace

Result<std::unique_ptr<CoordinationServer>> CoordinationServer::Start(
    const std::string& key, const std::vector<int>& ports, int num_agents, RestartPolicy policy,
    const std::string& master_addr, std::function<int()> pick_port, double join_timeout_s,
    EventSink on_event) {
  std::unique_ptr<CoordinationServer> s(new CoordinationServer());
  s->key_ = key;
  s->num_agents_ = num_agents;
  s->join_timeout_s_ = join_timeout_s;
  s->on_event_ = std::move(on_event);
  std::string last_error = "no candidate port";
  for (int port : ports) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return MakeError(std::string("strun: socket: ") + std::strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(uint16_t(port));
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && listen(fd, 1024) == 0) {
      s->listen_fd_ = fd;
      socklen_t len = sizeof a;
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);  // port 0: the one the kernel chose
      s->port_ = ntohs(a.sin_port);
      break;
    }
    last_error = "port " + std::to_string(port) + ": " + std::strerror(errno);
    close(fd);
  }
  if (s->listen_fd_ < 0)
    return MakeError("strun: cannot host the coordination service (" + last_error +
                     "); set STRUN_COORD_PORT to a free port");
  if (pipe2(s->wake_fd_, O_CLOEXEC | O_NONBLOCK) != 0)
    return MakeError(std::string("strun: pipe: ") + std::strerror(errno));
  s->state_ = std::make_unique<GroupState>(num_agents, policy, master_addr, std::move(pick_port));
  s->thread_ = std::thread([srv = s.get()] { srv->Run(); });
  return s;
}

CoordinationServer::~CoordinationServer() {
  stop_ = true;
  if (wake_fd_[1] >= 0) {
    char c = 1;
    (void)!write(wake_fd_[1], &c, 1);
  }
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  if (wake_fd_[0] >= 0) close(wake_fd_[0]);
  if (wake_fd_[1] >= 0) close(wake_fd_[1]);
}

std::optional<coord::Exit> CoordinationServer::exit() const {
  if (!finished_) return std::nullopt;
  return outcome_;
}

Json CoordinationServer::outcome() const {
  auto e = exit();
  return e ? coord::ToJson(coord::ServiceMessage(*e)) : Json();
}

void CoordinationServer::WaitFinished(double timeout_s) {
  double deadline = MonoSeconds() + timeout_s;
  while (!finished_ && MonoSeconds() < deadline) usleep(1000);
}

void CoordinationServer::Run() {
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<Conn*> by_agent(size_t(num_agents_), nullptr);
  const double started = MonoSeconds();
  double drain_deadline = 0;  // once finished: wait for agents to hang up, bounded

  auto send_out = [&](const std::vector<Outgoing>& out) {
    for (auto& e : state_->TakeTypedEvents())
      if (on_event_) on_event_(e);
    for (const auto& o : out) {
      for (int a = 0; a < num_agents_; ++a) {
        if (o.target != -1 && o.target != a) continue;
        Conn* c = by_agent[size_t(a)];
        if (c && c->channel) (void)c->channel->Send(o.message);
      }
    }
    if (state_->finished() && drain_deadline == 0) {
      drain_deadline = MonoSeconds() + 5.0;
      for (auto& c : conns)
        if (c->fd >= 0) shutdown(c->fd, SHUT_WR);
    }
  };
  auto drop = [&](Conn* c) {
    if (c->agent >= 0 && by_agent[size_t(c->agent)] == c) {
      by_agent[size_t(c->agent)] = nullptr;
      send_out(state_->OnAgentLost(c->agent));
    }
    c->channel.reset();  // closes the fd
    if (c->fd >= 0 && !c->channel) {
      if (c->agent < 0) close(c->fd);
      c->fd = -1;
    }
  };

  while (!stop_) {
    if (state_->finished()) {
      bool any_open = false;
      for (auto& c : conns) any_open |= c->fd >= 0;
      if (!any_open || MonoSeconds() > drain_deadline) break;
    }
    std::vector<pollfd> pfds;
    pfds.push_back({wake_fd_[0], POLLIN, 0});
    pfds.push_back({listen_fd_, POLLIN, 0});
    std::vector<Conn*> polled;
    for (auto& c : conns) {
      if (c->fd < 0) continue;
      pfds.push_back({c->fd, POLLIN, 0});
      polled.push_back(c.get());
    }
    int timeout_ms = 200;
    poll(pfds.data(), nfds_t(pfds.size()), timeout_ms);
    if (pfds[1].revents & POLLIN) {
      for (;;) {
        sockaddr_in peer{};
        socklen_t peer_len = sizeof peer;
        int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                         SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) break;
        if (!AdmitUnauthenticated(fd, peer.sin_addr.s_addr, conns)) {
          close(fd);
          continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        EnableKeepalive(fd);
        auto c = std::make_unique<Conn>();
        c->fd = fd;
        c->accepted_at = MonoSeconds();
        c->peer = peer.sin_addr.s_addr;
        auto nonce = RandomBytes(32);
        if (!nonce || state_->finished()) {
          close(fd);
          continue;
        }
        c->nonce = *nonce;
        if (!WriteFully(fd, std::string(kMagic) + c->nonce)) {
          close(fd);
          continue;
        }
        conns.push_back(std::move(c));
      }
    }
    for (size_t i = 0; i < polled.size(); ++i) {
      Conn* c = polled[i];
      if (!(pfds[i + 2].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (!c->channel) {
        // Handshake: collect the hello.
        char buf[kHelloSize];
        ssize_t n = recv(c->fd, buf, kHelloSize - c->hello.size(), MSG_DONTWAIT);
        if (n <= 0) {
          if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
          drop(c);
          continue;
        }
        c->hello.append(buf, size_t(n));
        if (c->hello.size() < kHelloSize) continue;
        if (c->hello.compare(0, kHelloMagic.size(), kHelloMagic) != 0) {
          drop(c);
          continue;
        }
        std::string nonce_c = c->hello.substr(8, 32);
        uint32_t agent = uint32_t(uint8_t(c->hello[40])) << 24 |
                         uint32_t(uint8_t(c->hello[41])) << 16 |
                         uint32_t(uint8_t(c->hello[42])) << 8 | uint32_t(uint8_t(c->hello[43]));
        std::string mac = c->hello.substr(44, 32);
        if (!DigestEqual(mac, HelloMac(key_, c->nonce, nonce_c, agent)) ||
            agent >= uint32_t(num_agents_) || by_agent[agent] != nullptr) {
          // Wrong key (another job or user), a bad index, or a duplicate: hang up without a word.
          if (agent < uint32_t(num_agents_) && by_agent[agent] != nullptr &&
              DigestEqual(mac, HelloMac(key_, c->nonce, nonce_c, agent)))
            fprintf(stderr, "strun: coordination: agent %u joined twice; ignoring the second one\n",
                    agent);
          drop(c);
          continue;
        }
        if (!WriteFully(c->fd, WelcomeMac(key_, c->nonce, nonce_c, agent))) {
          drop(c);
          continue;
        }
        c->agent = int(agent);
        c->channel = std::make_unique<Channel>(c->fd, SessionKey(key_, c->nonce, nonce_c),
                                               /*is_server=*/true);
        by_agent[agent] = c;
        continue;
      }
      std::string why;
      bool alive = c->channel->ReadAvailable(&why);
      while (auto m = c->channel->Next()) send_out(state_->OnMessage(c->agent, *m));
      if (!alive) drop(c);
    }
    // Unauthenticated connections get a few seconds.
    for (auto& c : conns)
      if (c->fd >= 0 && !c->channel && MonoSeconds() - c->accepted_at > kHandshakeTimeoutS)
        drop(c.get());
    conns.erase(std::remove_if(conns.begin(), conns.end(), [](const auto& c) { return c->fd < 0; }),
                conns.end());
    if (!state_->all_joined() && MonoSeconds() - started > join_timeout_s_)
      send_out(state_->OnJoinTimeout());
  }
  for (auto& c : conns) {
    c->channel.reset();
    if (c->fd >= 0 && c->agent < 0) close(c->fd);
  }
  outcome_ = state_->exit();
  finished_ = true;
}

}  // namespace strun::launcher
