// checkpoint/reshard.h: the optimizer state of a checkpoint, written at one parallel layout
// (dp, tp, pp, ZeRO-1 or not), for a rank of any other layout.
//
// The trainer's optimizer state is flat fp32 buffers (optim/flat_buffer.h): "flat.master",
// "flat.exp_avg", "flat.exp_avg_sq", laid out as the rank's parameters (its pipeline stage's, each
// its TP shard) back to back, padded to a multiple of dp under ZeRO-1, of which a ZeRO-1 rank
// saves its ShardRange; plus scalars such as "step". Each optimizer file says which part of which
// layout it holds in its safetensors metadata "flat_layout" (OptimizerFileLayout as JSON,
// flat_layout.h: the torch-free part, fuzzed).
//
// Resharding: ReadFullOptimizerState reads every optimizer file of the saved layout, joins the
// DP shards of each (pp, tp) rank into its flat buffer, cuts it into its parameters' TP shards,
// merges those over tp (parallel/tp_linear_sharding.h) into full tensors and takes each parameter
// from the first stage that holds it (a tied parameter's copies are equal). ShardOptimizerState
// then lays the full tensors out as a rank of the new layout holds them: its TP shard of each of
// its parameters in its flat layout, padded, and its ZeRO-1 range. A rank reads the files of the
// saved stages that hold its parameters (all their TP and DP ranks) and keeps the full states of
// its own parameters in CPU memory, once, at resume.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/flat_layout.h"
#include "strun/result.h"

namespace strun::train {

// The layout of a rank holding `params` (in order): optim::FlatLayout padded to a multiple of dp
// under ZeRO-1, the rank's ShardRange (all of it otherwise), as the trainer builds it.
OptimizerFileLayout DescribeOptimizerFile(const std::vector<ParameterShape>& params, bool zero,
                                          int dp_rank, int dp, int tp_rank, int tp, int pp_rank,
                                          int pp);

// The full (unsharded) optimizer state of a checkpoint, per parameter.
struct FullOptimizerState {
  int64_t step = 0;                                               // optimizer steps taken
  NamedTensorList scalars;                                        // e.g. "step"
  std::map<std::string, std::map<std::string, at::Tensor>> flat;  // state -> parameter -> full
};

// The sharding of the fused projections (CheckpointLoadOptions has them).
struct FusedShapes {
  int64_t q_rows = 0, kv_rows = 0, intermediate = 0;
};

// Reads the optimizer files of `saved` in `step_dir` and returns the full states of the
// parameters in `needed` (empty: all); the files of stages that hold none of them are not read.
// `verify(relative path)` checks a file before it is read (checksums). Files without
// "flat_layout" (written before it existed) are refused, naming the layout they can resume at.
Result<FullOptimizerState> ReadFullOptimizerState(
    const std::string& step_dir, const SavedLayout& saved, const FusedShapes& fused,
    const std::function<Status(const std::string&)>& verify,
    const std::set<std::string>& needed = {});

// The optimizer tensors (names as saved: "flat.*" and the scalars) of a rank holding `params`
// at the layout `target` (its ranks, dp, tp, zero), ready for the trainer's BuildOptimizer.
Result<NamedTensorList> ShardOptimizerState(const FullOptimizerState& full,
                                            const std::vector<ParameterShape>& params,
                                            const OptimizerFileLayout& target,
                                            const FusedShapes& fused);

// Pure pieces, also for tests. The parameters' shards in one rank's flat buffer `flat` (all of
// layout.numel()), each shaped as its segment.
Result<std::map<std::string, at::Tensor>> SplitFlat(const at::Tensor& flat,
                                                    const OptimizerFileLayout& layout);
// The flat buffer (layout.numel(), zero padding) of tensors by name, each of its segment's shape.
Result<at::Tensor> JoinFlat(const std::map<std::string, at::Tensor>& tensors,
                            const OptimizerFileLayout& layout);

}  // namespace strun::train
