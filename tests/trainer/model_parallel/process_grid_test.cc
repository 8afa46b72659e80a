// The process grid's pure layout against nanotron's ParallelContext (context.py at 5f8a52b0):
// ranks reshaped to [ep, pp, dp, tp], groups from its transposes, in its creation order.
#include "parallel/process_grid.h"

#include <gtest/gtest.h>

namespace strun::parallel {
namespace {

using Groups = std::vector<std::vector<int>>;

ProcessGrid Grid(int dp, int tp, int pp, int world) {
  auto grid = ProcessGrid::Create(GridShape{dp, tp, pp, 1}, world);
  EXPECT_TRUE(grid.ok()) << (grid.ok() ? "" : grid.error().message);
  return *grid;
}

TEST(ProcessGridTest, Dp2Tp4Pp1KeepsTpGroupsOnConsecutiveRanks) {
  const ProcessGrid grid = Grid(2, 4, 1, 8);
  EXPECT_EQ(grid.Groups(GroupKind::kTp), (Groups{{0, 1, 2, 3}, {4, 5, 6, 7}}));
  EXPECT_EQ(grid.Groups(GroupKind::kDp), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(grid.Groups(GroupKind::kPp), (Groups{{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}}));
  EXPECT_EQ(grid.Groups(GroupKind::kMp), (Groups{{0, 1, 2, 3}, {4, 5, 6, 7}}));
  EXPECT_EQ(grid.Groups(GroupKind::kWorld), (Groups{{0, 1, 2, 3, 4, 5, 6, 7}}));
  EXPECT_EQ(grid.Coords(6), (GridCoords{0, 0, 1, 2}));
}

TEST(ProcessGridTest, Dp2Tp2Pp2) {
  const ProcessGrid grid = Grid(2, 2, 2, 8);
  EXPECT_EQ(grid.Groups(GroupKind::kTp), (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  // transpose((3, 0, 1, 2)): groups enumerated by tp rank first, then pp.
  EXPECT_EQ(grid.Groups(GroupKind::kDp), (Groups{{0, 2}, {4, 6}, {1, 3}, {5, 7}}));
  // transpose((2, 3, 0, 1)): by dp rank first, then tp.
  EXPECT_EQ(grid.Groups(GroupKind::kPp), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(grid.Groups(GroupKind::kMp), (Groups{{0, 1, 4, 5}, {2, 3, 6, 7}}));
  EXPECT_EQ(grid.Groups(GroupKind::kTpAndEp), (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  EXPECT_EQ(grid.Groups(GroupKind::kEp), (Groups{{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}}));
  EXPECT_EQ(grid.GroupOf(GroupKind::kPp, 5), (std::vector<int>{1, 5}));
  EXPECT_EQ(grid.Coords(5), (GridCoords{0, 1, 0, 1}));
  for (int r = 0; r < 8; ++r) EXPECT_EQ(grid.WorldRank(grid.Coords(r)), r);
}

TEST(ProcessGridTest, ExpertAxisIsOutermost) {
  auto grid = ProcessGrid::Create(GridShape{1, 2, 1, 2}, 4);
  ASSERT_TRUE(grid.ok());
  EXPECT_EQ(grid->Groups(GroupKind::kEp), (Groups{{0, 2}, {1, 3}}));
  EXPECT_EQ(grid->Groups(GroupKind::kTpAndEp), (Groups{{0, 1, 2, 3}}));
  EXPECT_EQ(grid->Coords(3), (GridCoords{1, 0, 0, 1}));
}

TEST(ProcessGridTest, GroupsOfOneKindPartitionTheWorld) {
  const ProcessGrid grid = Grid(3, 2, 2, 12);
  for (GroupKind kind : kGroupCreationOrder) {
    std::vector<int> seen(12, 0);
    for (const auto& g : grid.Groups(kind)) {
      for (int r : g) ++seen[r];
    }
    EXPECT_EQ(seen, std::vector<int>(12, 1)) << GroupKindName(kind);
  }
}

TEST(ProcessGridTest, RejectsSizesThatDoNotMakeTheWorld) {
  auto grid = ProcessGrid::Create(GridShape{2, 2, 1, 1}, 8);
  ASSERT_FALSE(grid.ok());
  EXPECT_NE(grid.error().message.find("WORLD_SIZE=8"), std::string::npos) << grid.error().message;
  EXPECT_FALSE(ProcessGrid::Create(GridShape{0, 8, 1, 1}, 8).ok());
}

TEST(ProcessGridTest, DescribesTheGrid) {
  const std::string text = DescribeGrid(Grid(2, 2, 2, 8));
  EXPECT_NE(text.find("8 ranks = dp 2 x tp 2 x pp 2"), std::string::npos) << text;
  EXPECT_NE(text.find("   5   1   0   1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tp groups: [0 1] [2 3] [4 5] [6 7]\n"), std::string::npos) << text;
  EXPECT_NE(text.find("pp groups: [0 4] [1 5] [2 6] [3 7]\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace strun::parallel
