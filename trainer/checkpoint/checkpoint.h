// checkpoint/checkpoint.h: nanotron's checkpoint layout, written atomically, and resuming from
// it at the same or any other parallel layout (dp, tp, pp, zero_stage).
//
//   <checkpoints_path>/latest.txt                 the last complete step, e.g. "200"
//   <checkpoints_path>/<step>/config.yaml         the resolved config (general.step and
//                                                 general.consumed_train_samples updated)
//   <step>/model_config.json                      the Llama shape (nanotron's LlamaConfig fields)
//   <step>/checkpoint_metadata.json               version 1.4, tp, dp, pp, metas (consumed
//                                                 samples, last step, per data stage) = the data
//                                                 position
//   <step>/model/<name with / for .>/model_weight[_pp-rank-R-of-P_tp-rank-T-of-TP].safetensors
//                                                 one tensor "data" per file, nanotron's metadata;
//                                                 TP-sharded tensors: one file per TP rank (its
//                                                 shard, R = the pipeline stage that holds it),
//                                                 replicated ones (norms) without the suffix
//   <step>/optimizer/optimizer_config.json        type, parallelism
//   <step>/optimizer/optimizer_pp-R-of-P[_dp-D-of-DP]_tp-T-of-TP_exp-0-of-1.safetensors
//                                                 the flat fp32 states (optim/flat_buffer.h) of
//                                                 stage R's parameters; ZeRO-1: one shard per
//                                                 (PP, DP, TP) rank, else the ranks of DP rank 0;
//                                                 metadata "flat_layout" (reshard.h) describes it
//   <step>/lr_scheduler/lr_scheduler.json         scheduler step
//   <step>/random/tp-T-of-TP_dp-D-of-DP_pp-R-of-P.safetensors   each rank's CPU generator state
//   <step>/checksums/rank-W-of-N.json             CRC-32C of each file world rank W wrote (all
//                                                 but config.yaml; checkpoint_manifest.h)
//
// The component, one header each (include this one for all of them):
//   checkpoint_save.h      SaveCheckpoint: who writes which file, atomically
//   checkpoint_commit.h    the temporary directory made the step directory; stale ones removed
//   checkpoint_load.h      LoadCheckpoint: one rank's state, verified, at any layout
//   checkpoint_state.h     what a rank saves and gets back
//   checkpoint_metadata.h  checkpoint_metadata.json, latest.txt, the scheduler and optimizer JSON
//   checkpoint_paths.h     the per-rank file names
//   weight_sharding.h      which weights are TP-sharded, and their files' slices metadata
//   safetensors_aten.h     tensors to and from safetensors files
//
// Differences from nanotron: optimizer, scheduler and random states are safetensors/JSON instead of
// pickles (torch.save), so that they are readable without Python; the layout and names are the
// same.
#pragma once

#include "checkpoint/checkpoint_commit.h"
#include "checkpoint/checkpoint_load.h"
#include "checkpoint/checkpoint_metadata.h"
#include "checkpoint/checkpoint_paths.h"
#include "checkpoint/checkpoint_save.h"
#include "checkpoint/checkpoint_state.h"
#include "checkpoint/safetensors_aten.h"
#include "checkpoint/weight_sharding.h"
