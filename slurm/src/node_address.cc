// A node's address: Slurm's NodeAddr first, name resolution second.
//
// The libslurm query runs in a forked child (slurm_child.h): the caller can never be killed or
// hung by it.
#include "strun/slurm/node_address.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "strun/slurm/slurm_child.h"

namespace strun::slurm {
namespace {

struct SlurmNodeInfo {
  std::string node_addr;
  std::string node_hostname;
};

Result<SlurmNodeInfo> QuerySlurm(const std::string& node_name) {
  // The reply: "+addr\nhostname\n" on success, "-reason" otherwise.
  auto got = CallInSlurmChild("", [&node_name] {
    node_info_msg_t* info = nullptr;
    std::vector<char> name(node_name.begin(), node_name.end());
    name.push_back('\0');
    // Replies are built by appending one character, then strings: GCC 12 reports -Wrestrict false
    // positives in release builds for `"literal" + std::string&&` and for assigning a literal.
    std::string reply;
    if (slurm_load_node_single(&info, name.data(), SHOW_ALL) != SLURM_SUCCESS) {
      reply.assign(1, '-');
      reply += "slurm_load_node_single failed: ";
      reply += LastSlurmError();
      return reply;
    }
    for (uint32_t i = 0; info != nullptr && i < info->record_count; ++i) {
      const node_info_t& node = info->node_array[i];
      if (node.name == nullptr || node_name != node.name) continue;
      reply.assign(1, '+');
      reply += node.node_addr ? node.node_addr : "";
      reply += '\n';
      reply += node.node_hostname ? node.node_hostname : "";
      reply += '\n';
      return reply;
    }
    return std::string("-slurmctld does not know the node");
  });
  if (!got) return got.error();
  const std::string reply = "+" + *got;
  size_t nl = reply.find('\n', 1);
  SlurmNodeInfo info;
  info.node_addr = reply.substr(1, nl == std::string::npos ? std::string::npos : nl - 1);
  if (nl != std::string::npos) {
    size_t nl2 = reply.find('\n', nl + 1);
    info.node_hostname = reply.substr(nl + 1, nl2 == std::string::npos ? nl2 : nl2 - nl - 1);
  }
  return info;
}

}  // namespace

Result<std::string> ResolveHost(const std::string& host) {
  if (host.empty()) return MakeError("cannot resolve an empty host name");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) {
    return MakeError("cannot resolve host '" + host + "': " + gai_strerror(rc));
  }
  // IPv4 first: it is what every peer (gloo, NCCL, our coordination service) can reach.
  const addrinfo* pick = nullptr;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
    if (pick == nullptr && a->ai_family == AF_INET6) pick = a;
  }
  std::string out;
  if (pick != nullptr) {
    char text[NI_MAXHOST];
    if (getnameinfo(pick->ai_addr, pick->ai_addrlen, text, sizeof text, nullptr, 0,
                    NI_NUMERICHOST) == 0) {
      out = text;
    }
  }
  freeaddrinfo(found);
  if (out.empty()) return MakeError("host '" + host + "' has no IPv4 or IPv6 address");
  return out;
}

Result<std::string> NodeAddress(const std::string& node_name) {
  if (node_name.empty()) return MakeError("cannot find the address of an empty node name");
  std::string tried;
  auto slurm = QuerySlurm(node_name);
  if (slurm.ok()) {
    // NodeAddr defaults to NodeHostname, which defaults to NodeName: it may still be a name.
    for (const std::string& candidate : {slurm->node_addr, slurm->node_hostname}) {
      if (candidate.empty()) continue;
      auto resolved = ResolveHost(candidate);
      if (resolved.ok()) return resolved;
      tried += "; Slurm's address for it, " + resolved.error().message;
    }
  } else {
    tried += "; Slurm: " + slurm.error().message;
  }
  auto resolved = ResolveHost(node_name);
  if (resolved.ok()) return resolved;
  return MakeError("no address for node '" + node_name + "'" + tried + "; " +
                   resolved.error().message +
                   ". Give the node a NodeAddr in slurm.conf or make its name resolve");
}

}  // namespace strun::slurm
