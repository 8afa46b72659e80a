// The coordination protocol's typed messages (coord_protocol.h): wire keys, defaults, untrusted
// input.
#include "strun/launcher/coord_protocol.h"

#include <gtest/gtest.h>

namespace strun::coord {
namespace {

TEST(CoordProtocol, AgentMessagesKeepTheirWireKeys) {
  EXPECT_EQ(ToJson(AgentMessage(Ready{0, "nid001"})),
            (Json{{"type", "ready"}, {"attempt", 0}, {"node", "nid001"}}));
  EXPECT_EQ(ToJson(AgentMessage(Progress{1, 57, false})),
            (Json{{"type", "progress"}, {"attempt", 1}, {"step", 57}, {"preempted", false}}));
  EXPECT_EQ(ToJson(AgentMessage(Stopped{2, {}})), (Json{{"type", "stopped"}, {"attempt", 2}}));
  EXPECT_EQ(ToJson(AgentMessage(Aborted{143, "SIGTERM"})),
            (Json{{"type", "aborted"}, {"code", 143}, {"reason", "SIGTERM"}}));
}

TEST(CoordProtocol, RoundTrips) {
  WorkerFailure f;
  f.rank = 3;
  f.node = "nid002";
  f.tail = {"boom"};
  Exit e;
  e.code = 1;
  e.reason = "r";
  e.lost_agents = {{1, "nid002"}};
  e.root_cause = f;
  e.failures = {f};
  const Json j = ToJson(ServiceMessage(e));
  auto back = ParseServiceMessage(j);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(ToJson(*back), j);
  const Event ev{1.7e9, AgentLost{1, "nid002", "lost_agent", "closed"}};
  auto evb = ParseEvent(ToJson(ev));
  ASSERT_TRUE(evb.ok());
  EXPECT_EQ(ToJson(*evb), ToJson(ev));
  EXPECT_EQ(ToJson(ev)["event"], "agent_lost");
  auto failed = ParseAgentMessage(ToJson(AgentMessage(Failed{0, {f}})));
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(std::get<Failed>(*failed).failures[0].node, "nid002");
}

TEST(CoordProtocol, UntrustedInputIsAnErrorNotAThrow) {
  EXPECT_FALSE(ParseAgentMessage(Json::array()).ok());
  EXPECT_FALSE(ParseAgentMessage(Json{{"type", "ready"}, {"attempt", "0"}}).ok());
  EXPECT_FALSE(
      ParseAgentMessage(Json{{"type", "failed"}, {"attempt", 0}, {"failures", {{{"rank", 1.5}}}}})
          .ok());
  EXPECT_FALSE(ParseServiceMessage(Json{{"type", "exit"}, {"root_cause", 3}}).ok());
  EXPECT_FALSE(ParseServiceMessage(Json{{"type", "nonsense"}}).ok());
  EXPECT_FALSE(ParseEvent(Json{{"event", "exit"}, {"lost_agents", {1}}}).ok());
  // Absent keys take their defaults; unknown types are kept for GroupState to ignore.
  auto aborted = ParseAgentMessage(Json{{"type", "aborted"}});
  ASSERT_TRUE(aborted.ok());
  EXPECT_EQ(std::get<Aborted>(*aborted).code, 1);
  EXPECT_TRUE(std::holds_alternative<UnknownMessage>(*ParseAgentMessage(Json{{"type", "hello"}})));
}

}  // namespace
}  // namespace strun::coord
