// checkpoint/checkpoint_paths.h: the names of a checkpoint's per-rank files in nanotron's layout
// (checkpoint.h draws it). Torch-free.
//
// A name carries the rank's place in the grid as nanotron spells it ("<rank>-of-<size>"), so that
// a rank of any layout can tell which files a checkpoint holds without reading them.
#pragma once

#include <string>

namespace strun::train {

// The model file of a parameter, relative to the step directory:
// model/<name with / for .>/model_<leaf>[_pp-rank-R-of-P_tp-rank-T-of-TP].safetensors. TP-sharded
// tensors carry the suffix (the file of TP rank `tp_rank` of stage `pp_rank`); replicated ones have
// none (nanotron), so their path does not depend on the layout.
std::string ModelWeightPath(const std::string& name, bool sharded, int tp_rank = 0, int tp = 1,
                            int pp_rank = 0, int pp = 1);

// The optimizer file of a rank, relative to <step>/optimizer/ (`zero`: ZeRO-1, one file per DP
// rank, whose name carries it).
std::string OptimizerFileName(bool zero, int dp_rank, int dp, int tp_rank, int tp, int pp_rank = 0,
                              int pp = 1);

// The random state file of a rank, relative to <step>/random/.
std::string RandomFileName(int dp_rank, int dp, int tp_rank, int tp, int pp_rank = 0, int pp = 1);

}  // namespace strun::train
