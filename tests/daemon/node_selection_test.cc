#include "strun/daemon/node_selection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace strun::daemon {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::vector<std::string> kAllocation = {"nid001", "nid002", "nid003", "nid004"};

TEST(SelectNodes, FirstLaunchTakesTheFirstNodesOfTheAllocation) {
  auto r = SelectNodes(kAllocation, {}, {}, 2);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_THAT(*r, ElementsAre("nid001", "nid002"));
}

TEST(SelectNodes, ARelaunchKeepsThePreviousNodesAndAddsASpare) {
  auto r = SelectNodes(kAllocation, {{"nid001", "lost_agent"}}, {"nid001", "nid002", "nid004"}, 3);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_THAT(*r, ElementsAre("nid002", "nid003", "nid004"))
      << "allocation order, previous nodes kept";
}

TEST(SelectNodes, PreviousNodesWinOverEarlierSpares) {
  auto r = SelectNodes(kAllocation, {}, {"nid003", "nid004"}, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(*r, ElementsAre("nid003", "nid004"));
  auto ignores_strangers = SelectNodes(kAllocation, {}, {"nid009", "nid004"}, 2);
  ASSERT_TRUE(ignores_strangers.ok());
  EXPECT_THAT(*ignores_strangers, ElementsAre("nid001", "nid004"));
}

TEST(SelectNodes, TooFewUsableNodesIsAnErrorThatSaysWhy) {
  auto r = SelectNodes(kAllocation,
                       {{"nid002", "lost_agent"}, {"nid004", "Slurm reports nid004 DOWN"}}, {}, 3);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("only 2 of the 3 nodes needed are usable"));
  EXPECT_THAT(r.error().message, HasSubstr("nid002: lost_agent"));
  EXPECT_THAT(r.error().message, HasSubstr("nid004: Slurm reports nid004 DOWN"));
  EXPECT_FALSE(SelectNodes(kAllocation, {}, {}, 0).ok());
  EXPECT_FALSE(SelectNodes(kAllocation, {}, {}, 5).ok());
}

TEST(SelectNodes, ExactlyEnoughNodes) {
  auto r = SelectNodes(kAllocation, {{"nid001", "x"}, {"nid003", "y"}}, {}, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(*r, ElementsAre("nid002", "nid004"));
}

}  // namespace
}  // namespace strun::daemon
