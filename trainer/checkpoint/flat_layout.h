// checkpoint/flat_layout.h: the "flat_layout" metadata of an optimizer file (which part of which
// flat optimizer buffer it holds), as JSON, without torch: reshard.h resharding uses it, and the
// parser of this untrusted text (from a checkpoint on disk) is fuzzed (tests/fuzz/,
// fuzz_flat_layout).
//   {"version": 1, "pp_rank": R, "pp": P, "dp_rank": D, "dp": DP, "tp_rank": T, "tp": TP,
//    "zero": true, "numel": padded size, "begin": b, "end": e,
//    "segments": [{"name": "model.decoder.0.pp_block.attn.qkv_proj.weight", "shape": [96, 64],
//                  "offset": 0}, ...]}
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::train {

inline constexpr const char* kFlatLayoutKey = "flat_layout";

// Which part of which flat layout one optimizer file holds.
struct OptimizerFileLayout {
  int pp_rank = 0, pp = 1, dp_rank = 0, dp = 1, tp_rank = 0, tp = 1;
  bool zero = false;
  int64_t numel = 0;           // the whole flat buffer, padded
  int64_t begin = 0, end = 0;  // this file's range of it
  struct Segment {
    std::string name;
    std::vector<int64_t> shape;  // the rank's (TP shard) shape
    int64_t offset = 0;

    bool operator==(const Segment&) const = default;
  };
  std::vector<Segment> segments;

  bool operator==(const OptimizerFileLayout&) const = default;
};

std::string FlatLayoutJson(const OptimizerFileLayout& layout);
// Parses and checks it: every number an integer that fits its field, ranks in range, segments
// inside numel (their element counts computed without overflow), in order, not overlapping, not
// repeated, range inside numel. Errors name `file`. ParseFlatLayout(FlatLayoutJson(l)) == l.
Result<OptimizerFileLayout> ParseFlatLayout(const std::string& json, const std::string& file);

}  // namespace strun::train
