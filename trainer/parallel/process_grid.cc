#include "parallel/process_grid.h"

#include <fmt/format.h>

#include <algorithm>

namespace strun::parallel {
namespace {

// Axes of nanotron's rank array, in its memory order.
enum Axis { kEpAxis = 0, kPpAxis = 1, kDpAxis = 2, kTpAxis = 3 };
using Index = std::array<int, 4>;

Index Extents(const GridShape& s) { return {s.ep, s.pp, s.dp, s.tp}; }

// Which axes enumerate the groups (outer, slowest first: the order of nanotron's transposed
// array, or of its list comprehension) and which span one group (inner).
struct GroupAxes {
  std::vector<Axis> outer;
  std::vector<Axis> inner;
};

GroupAxes AxesOf(GroupKind kind) {
  switch (kind) {
    case GroupKind::kWorld:
      return {{}, {kEpAxis, kPpAxis, kDpAxis, kTpAxis}};
    // ranks.transpose((0, 1, 2, 3)).reshape(-1, tp)
    case GroupKind::kTp:
      return {{kEpAxis, kPpAxis, kDpAxis}, {kTpAxis}};
    // ranks.transpose((3, 0, 1, 2)).reshape(-1, dp)
    case GroupKind::kDp:
      return {{kTpAxis, kEpAxis, kPpAxis}, {kDpAxis}};
    // ranks.transpose((2, 3, 0, 1)).reshape(-1, pp)
    case GroupKind::kPp:
      return {{kDpAxis, kTpAxis, kEpAxis}, {kPpAxis}};
    // ranks.transpose((1, 2, 3, 0)).reshape(-1, ep)
    case GroupKind::kEp:
      return {{kPpAxis, kDpAxis, kTpAxis}, {kEpAxis}};
    // [ranks[:, :, d, :] for d]
    case GroupKind::kMp:
      return {{kDpAxis}, {kEpAxis, kPpAxis, kTpAxis}};
    // [ranks[:, p, d, :] for p for d]
    case GroupKind::kTpAndEp:
      return {{kPpAxis, kDpAxis}, {kEpAxis, kTpAxis}};
  }
  return {};
}

// Calls f(index) for every combination of `axes` (first axis slowest), other axes from `base`.
template <typename F>
void ForEach(const Index& extents, const std::vector<Axis>& axes, Index base, F&& f,
             size_t depth = 0) {
  if (depth == axes.size()) {
    f(base);
    return;
  }
  for (int i = 0; i < extents[axes[depth]]; ++i) {
    base[axes[depth]] = i;
    ForEach(extents, axes, base, f, depth + 1);
  }
}

std::string FormatGroups(const std::vector<std::vector<int>>& groups) {
  std::string out;
  for (const auto& g : groups) {
    out += out.empty() ? "[" : " [";
    // Appended piece by piece: "x" + std::string trips GCC 12's false -Wrestrict (release build).
    for (size_t i = 0; i < g.size(); ++i) {
      if (i) out += ' ';
      out += std::to_string(g[i]);
    }
    out += "]";
  }
  return out;
}

}  // namespace

std::string_view GroupKindName(GroupKind kind) {
  switch (kind) {
    case GroupKind::kWorld:
      return "world";
    case GroupKind::kTp:
      return "tp";
    case GroupKind::kDp:
      return "dp";
    case GroupKind::kPp:
      return "pp";
    case GroupKind::kEp:
      return "ep";
    case GroupKind::kMp:
      return "mp";
    case GroupKind::kTpAndEp:
      return "tp_and_ep";
  }
  return "?";
}

Result<ProcessGrid> ProcessGrid::Create(const GridShape& shape, int world_size) {
  if (shape.dp < 1 || shape.tp < 1 || shape.pp < 1 || shape.ep < 1) {
    return MakeError(
        fmt::format("parallelism sizes must be >= 1, got dp={} tp={} pp={} expert_parallel_size={}",
                    shape.dp, shape.tp, shape.pp, shape.ep));
  }
  if (shape.world_size() != world_size) {
    return MakeError(fmt::format(
        "dp*tp*pp*expert_parallel_size = {}*{}*{}*{} = {} must equal the number of processes "
        "(WORLD_SIZE={}); change parallelism or the number of ranks",
        shape.dp, shape.tp, shape.pp, shape.ep, shape.world_size(), world_size));
  }
  return ProcessGrid(shape);
}

int ProcessGrid::WorldRank(const GridCoords& c) const {
  return ((c.ep * shape_.pp + c.pp) * shape_.dp + c.dp) * shape_.tp + c.tp;
}

GridCoords ProcessGrid::Coords(int world_rank) const {
  GridCoords c;
  c.tp = world_rank % shape_.tp;
  world_rank /= shape_.tp;
  c.dp = world_rank % shape_.dp;
  world_rank /= shape_.dp;
  c.pp = world_rank % shape_.pp;
  c.ep = world_rank / shape_.pp;
  return c;
}

std::vector<std::vector<int>> ProcessGrid::Groups(GroupKind kind) const {
  const Index extents = Extents(shape_);
  const GroupAxes axes = AxesOf(kind);
  std::vector<std::vector<int>> groups;
  ForEach(extents, axes.outer, Index{}, [&](const Index& outer) {
    std::vector<int> members;
    ForEach(extents, axes.inner, outer, [&](const Index& i) {
      members.push_back(WorldRank({i[kEpAxis], i[kPpAxis], i[kDpAxis], i[kTpAxis]}));
    });
    std::sort(members.begin(), members.end());
    groups.push_back(std::move(members));
  });
  return groups;
}

std::vector<int> ProcessGrid::GroupOf(GroupKind kind, int world_rank) const {
  for (auto& g : Groups(kind)) {
    if (std::find(g.begin(), g.end(), world_rank) != g.end()) return g;
  }
  return {};
}

std::string DescribeGrid(const ProcessGrid& grid) {
  const GridShape& s = grid.shape();
  std::string out = fmt::format(
      "process grid: {} ranks = dp {} x tp {} x pp {} (ep {}); "
      "rank = ((ep*PP + pp)*DP + dp)*TP + tp\n",
      s.world_size(), s.dp, s.tp, s.pp, s.ep);
  const bool ep = s.ep > 1;
  out += ep ? "rank  ep  pp  dp  tp\n" : "rank  pp  dp  tp\n";
  for (int r = 0; r < grid.world_size(); ++r) {
    const GridCoords c = grid.Coords(r);
    out += ep ? fmt::format("{:4}  {:2}  {:2}  {:2}  {:2}\n", r, c.ep, c.pp, c.dp, c.tp)
              : fmt::format("{:4}  {:2}  {:2}  {:2}\n", r, c.pp, c.dp, c.tp);
  }
  for (GroupKind kind : {GroupKind::kTp, GroupKind::kDp, GroupKind::kPp}) {
    out += fmt::format("{} groups: {}\n", GroupKindName(kind), FormatGroups(grid.Groups(kind)));
  }
  return out;
}

}  // namespace strun::parallel
