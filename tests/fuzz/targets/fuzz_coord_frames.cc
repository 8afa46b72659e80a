// Fuzzes the coordination protocol as the service sees it (launcher/coord_service.h): bytes from
// an agent's connection go through Channel's frame parser (length, payload, HMAC, JSON), every
// message it yields through the typed parser (coord_protocol.h) and what parses through
// GroupState, whose replies and events are serialised as the service does (Channel::Send,
// strund's event log) and must parse back to the same JSON.
//
// Input: "R" then raw bytes tests the framing itself (lengths, truncation, bad MACs); anything
// else is one JSON payload per line, each framed and authenticated with the session key, which
// reaches the message handling behind the MAC check.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

#include "coord_wire.h"
#include "fuzz_util.h"
#include "strun/launcher/coord_service.h"

namespace {

using strun::launcher::Channel;
using strun::launcher::GroupState;
using strun::launcher::Json;
using strun::launcher::Outgoing;

constexpr int kAgents = 2;
const std::string kKey(32, 'k');

std::string Frame(std::string_view payload, uint64_t seq) {
  std::string frame;
  const auto len = static_cast<uint32_t>(payload.size());
  for (int i = 3; i >= 0; --i) frame.push_back(static_cast<char>(len >> (8 * i)));
  frame.append(payload);
  frame += strun::launcher::FrameMac(kKey, 'C', seq, payload);
  return frame;
}

std::string Stream(std::string_view input) {
  if (input.starts_with("R")) return std::string(input.substr(1));
  std::string stream;
  uint64_t seq = 0;
  for (std::string_view line : strun::fuzz::Split(input, "\n")) stream += Frame(line, seq++);
  return stream;
}

void Deliver(GroupState& state, const std::vector<Outgoing>& out) {
  namespace coord = strun::coord;
  for (const auto& o : out) {
    FUZZ_CHECK(o.target >= -1 && o.target < kAgents, "a reply to an agent that does not exist");
    auto back = coord::ParseServiceMessage(o.message);
    FUZZ_CHECK(back.ok(), "a reply its agent cannot parse");
    FUZZ_CHECK(coord::ToJson(*back) == o.message, "a reply that does not survive a round trip");
    (void)o.message.dump();
  }
  for (const auto& event : state.TakeTypedEvents()) {
    const Json j = coord::ToJson(event);
    auto back = coord::ParseEvent(j);
    FUZZ_CHECK(back.ok(), "an event that does not parse");
    FUZZ_CHECK(coord::ToJson(*back) == j, "an event that does not survive a round trip");
    (void)j.dump();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string stream = Stream(strun::fuzz::AsText(data, size));
  int fds[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0, "socketpair");
  FUZZ_CHECK(::fcntl(fds[1], F_SETFL, O_NONBLOCK) == 0, "fcntl");
  Channel channel(fds[0], kKey, /*is_server=*/true);  // owns fds[0]
  GroupState state(kAgents, strun::launcher::RestartPolicy{2, 0.0, 0.0, 2}, "127.0.0.1",
                   [] { return 29500; });
  size_t sent = 0;
  size_t messages = 0;
  bool alive = true;
  // Writes what the socket takes and lets the channel read it, as the service's poll loop does.
  while (alive) {
    if (sent < stream.size()) {
      ssize_t n = ::write(fds[1], stream.data() + sent, stream.size() - sent);
      if (n > 0) sent += static_cast<size_t>(n);
    }
    std::string why;
    alive = channel.ReadAvailable(&why);
    if (!alive) FUZZ_CHECK(!why.empty(), "a dropped connection without a reason");
    while (auto m = channel.Next()) {
      const int agent = static_cast<int>(messages++ % kAgents);
      auto parsed = strun::coord::ParseAgentMessage(*m);  // untrusted: an error, never a throw
      if (!parsed) {
        FUZZ_CHECK(!parsed.error().message.empty(), "a parse error without a message");
        continue;
      }
      Deliver(state, state.OnMessage(agent, *parsed));
    }
    if (sent == stream.size()) break;
  }
  if (alive) Deliver(state, state.OnAgentLost(1));
  ::close(fds[1]);
  return 0;
}
