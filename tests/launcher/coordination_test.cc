// The coordination service over real sockets: authentication and message flow.
#include "strun/launcher/coordination.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "strun/launcher/crypto.h"

namespace strun::launcher {
namespace {

// Waits for the next message on a channel.
std::optional<Json> Receive(Channel& ch, int timeout_ms = 5000) {
  for (;;) {
    if (auto m = ch.Next()) return m;
    pollfd p{ch.fd(), POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
    std::string why;
    if (!ch.ReadAvailable(&why)) {
      if (auto m = ch.Next()) return m;
      return std::nullopt;
    }
  }
}

std::vector<int> TestPorts() {
  LaunchPlan p;
  p.run_key = "test:" + std::to_string(getpid());
  auto key = DigestBytes(Sha256("k" + std::to_string(getpid())));
  return CandidatePorts(key, {}, p);
}

TEST(Coordination, TwoAgentsStartAndFinishTogether) {
  const std::string key = DigestBytes(Sha256("job key"));
  auto server = CoordinationServer::Start(
      key, TestPorts(), 2, RestartPolicy{0}, "10.0.0.1", [] { return 41234; }, 30);
  ASSERT_TRUE(server.ok()) << server.error().message;
  const std::vector<int> port = {(*server)->port()};
  auto a0 = ConnectToCoordinator("127.0.0.1", port, key, 0, 5);
  ASSERT_TRUE(a0.ok()) << a0.error().message;
  auto a1 = ConnectToCoordinator("127.0.0.1", port, key, 1, 5);
  ASSERT_TRUE(a1.ok()) << a1.error().message;
  ASSERT_TRUE((*a0)->Send({{"type", "ready"}, {"attempt", 0}}).ok());
  ASSERT_TRUE((*a1)->Send({{"type", "ready"}, {"attempt", 0}}).ok());
  for (auto* ch : {a0->get(), a1->get()}) {
    auto m = Receive(*ch);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ((*m)["type"], "start");
    EXPECT_EQ((*m)["master_port"], 41234);
  }
  (void)(*a0)->Send({{"type", "succeeded"}, {"attempt", 0}});
  (void)(*a1)->Send({{"type", "succeeded"}, {"attempt", 0}});
  for (auto* ch : {a0->get(), a1->get()}) {
    auto m = Receive(*ch);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ((*m)["type"], "exit");
    EXPECT_EQ((*m)["code"], 0);
  }
}

TEST(Coordination, WrongKeyCannotJoin) {
  const std::string key = DigestBytes(Sha256("right"));
  auto server = CoordinationServer::Start(
      key, TestPorts(), 2, RestartPolicy{0}, "a", [] { return 1; }, 30);
  ASSERT_TRUE(server.ok()) << server.error().message;
  auto bad =
      ConnectToCoordinator("127.0.0.1", {(*server)->port()}, DigestBytes(Sha256("wrong")), 1, 1.5);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("same secret"), std::string::npos) << bad.error().message;
  // The rejected attempt did not take agent 1's place.
  auto good = ConnectToCoordinator("127.0.0.1", {(*server)->port()}, key, 1, 5);
  EXPECT_TRUE(good.ok());
}

TEST(Coordination, LostAgentStopsTheGroup) {
  const std::string key = DigestBytes(Sha256("lost"));
  auto server = CoordinationServer::Start(
      key, TestPorts(), 2, RestartPolicy{3}, "a", [] { return 1; }, 30);
  ASSERT_TRUE(server.ok());
  const std::vector<int> port = {(*server)->port()};
  auto a0 = ConnectToCoordinator("127.0.0.1", port, key, 0, 5);
  auto a1 = ConnectToCoordinator("127.0.0.1", port, key, 1, 5);
  ASSERT_TRUE(a0.ok() && a1.ok());
  (void)(*a0)->Send({{"type", "ready"}, {"attempt", 0}});
  a1->reset();  // agent 1 dies
  std::optional<Json> m;
  do {
    m = Receive(**a0);
  } while (m && (*m)["type"] == "start");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ((*m)["type"], "exit");
  EXPECT_EQ((*m)["code"], 1);
}

TEST(Coordination, TamperedFrameIsRejected) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  Channel sender(fds[0], "session", /*is_server=*/false);
  Channel receiver(fds[1], "other session", /*is_server=*/true);
  ASSERT_TRUE(sender.Send({{"type", "ready"}}).ok());
  std::string why;
  usleep(10000);
  EXPECT_FALSE(receiver.ReadAvailable(&why));
  EXPECT_EQ(why, "message failed authentication");
}

TEST(Coordination, KeyAndPorts) {
  LaunchPlan p;
  p.run_key = "slurm:1.0";
  std::string dir = "/tmp/strun_secret_test_" + std::to_string(getpid());
  std::map<std::string, std::string> env = {{"STRUN_SECRET_FILE", dir + "-secret"}};
  auto k1 = CoordinationKey(p, env);
  ASSERT_TRUE(k1.ok()) << k1.error().message;
  auto k2 = CoordinationKey(p, env);  // the file now exists: same secret
  EXPECT_EQ(*k1, *k2);
  p.run_key = "slurm:2.0";
  EXPECT_NE(*CoordinationKey(p, env), *k1);
  chmod((dir + "-secret").c_str(), 0644);
  auto open = CoordinationKey(p, env);
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.error().message.find("chmod 600"), std::string::npos);
  unlink((dir + "-secret").c_str());
  EXPECT_NE(*CoordinationKey(p, {{"STRUN_JOB_SECRET", "a"}}),
            *CoordinationKey(p, {{"STRUN_JOB_SECRET", "b"}}));
  auto ports = CandidatePorts(*k1, {}, p);
  EXPECT_GE(ports.size(), 8u);
  for (int port : ports) {
    EXPECT_GE(port, 20000);
    EXPECT_LT(port, 32000);
  }
  EXPECT_EQ(ports, CandidatePorts(*k1, {}, p));
  EXPECT_EQ(CandidatePorts(*k1, {{"STRUN_COORD_PORT", "23456"}}, p), (std::vector<int>{23456}));
}

// The one generator of job secrets (strund's, PMIx rank 0's, the secret file's): 64 hex digits.
TEST(Coordination, NewJobSecret) {
  auto a = NewJobSecret(), b = NewJobSecret();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 64u);
  EXPECT_EQ(a->find_first_not_of("0123456789abcdef"), std::string::npos) << *a;
  EXPECT_NE(*a, *b);
  // The secret file holds one, followed by a newline.
  std::string path = "/tmp/strun_new_secret_test_" + std::to_string(getpid());
  LaunchPlan p;
  p.run_key = "r";
  ASSERT_TRUE(CoordinationKey(p, {{"STRUN_SECRET_FILE", path}}).ok());
  std::ifstream in(path);
  std::string line, rest;
  std::getline(in, line);
  EXPECT_EQ(line.size(), 64u);
  EXPECT_EQ(line.find_first_not_of("0123456789abcdef"), std::string::npos) << line;
  EXPECT_FALSE(std::getline(in, rest));
  EXPECT_EQ(*CoordinationKey(p, {{"STRUN_SECRET_FILE", path}}),
            DeriveCoordinationKey(line + "\n", "r"));
  unlink(path.c_str());
}

}  // namespace
}  // namespace strun::launcher
