// parallel/process_grid.h: nanotron's process grid (parallel/context.py at nanotron 5f8a52b0),
// as pure arithmetic: no processes, no torch.
//
// The world ranks are laid out as an array of shape [ep, pp, dp, tp] in C order, so
//   world_rank = ((ep_rank * pp + pp_rank) * dp + dp_rank) * tp + tp_rank.
// TP groups hold consecutive ranks (they stay inside a node when tp divides the GPUs per node),
// then DP replicas, then pipeline stages. Groups of each kind are listed in the order nanotron
// creates them (its numpy transposes), each group's members ascending (torch sorts new_group's
// ranks, and a rank's index in the group is its position there).
//
// process_grid_groups.h turns this layout into c10d process groups.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "strun/result.h"

namespace strun::parallel {

// The groups nanotron's ParallelContext builds, in its creation order (kWorld first: world_pg).
//   kMp:      tp x pp x ep of one DP replica (the ranks holding one model copy).
//   kTpAndEp: tp x ep of one (pp, dp) coordinate.
enum class GroupKind { kWorld, kTp, kDp, kPp, kEp, kMp, kTpAndEp };
inline constexpr std::array<GroupKind, 7> kGroupCreationOrder = {
    GroupKind::kWorld, GroupKind::kTp, GroupKind::kDp,     GroupKind::kPp,
    GroupKind::kEp,    GroupKind::kMp, GroupKind::kTpAndEp};
std::string_view GroupKindName(
    GroupKind kind);  // "world", "tp", "dp", "pp", "ep", "mp", "tp_and_ep"

struct GridShape {
  int dp = 1;
  int tp = 1;
  int pp = 1;
  int ep = 1;  // expert parallelism: always 1 for Llama; kept for nanotron's rank formula
  int world_size() const { return dp * tp * pp * ep; }
  bool operator==(const GridShape&) const = default;
};

struct GridCoords {
  int ep = 0;
  int pp = 0;
  int dp = 0;
  int tp = 0;
  bool operator==(const GridCoords&) const = default;
};

class ProcessGrid {
 public:
  // Fails unless every size is >= 1 and dp * tp * pp * ep == world_size (nanotron's assertion),
  // naming the sizes.
  static Result<ProcessGrid> Create(const GridShape& shape, int world_size);

  const GridShape& shape() const { return shape_; }
  int world_size() const { return shape_.world_size(); }

  int WorldRank(const GridCoords& coords) const;
  GridCoords Coords(int world_rank) const;

  // Every group of `kind`, each as ascending world ranks, in nanotron's creation order. The groups
  // of one kind partition the world.
  std::vector<std::vector<int>> Groups(GroupKind kind) const;
  // The group of `kind` holding `world_rank`.
  std::vector<int> GroupOf(GroupKind kind, int world_rank) const;

 private:
  explicit ProcessGrid(const GridShape& shape) : shape_(shape) {}
  GridShape shape_;
};

// A human-readable table for `strun-train --check`: the shape, the rank formula, every rank's
// coordinates and the tp, dp and pp groups, e.g.
//   process grid: 8 ranks = dp 2 x tp 2 x pp 2 (ep 1); rank = ((ep*PP + pp)*DP + dp)*TP + tp
//   rank  pp  dp  tp
//      0   0   0   0
//   ...
//   tp groups: [0 1] [2 3] [4 5] [6 7]
std::string DescribeGrid(const ProcessGrid& grid);

}  // namespace strun::parallel
