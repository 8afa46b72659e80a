// checkpoint_paths.h: the names of a checkpoint's per-rank files.
#include "checkpoint/checkpoint_paths.h"

namespace strun::train {

namespace {

std::string OfStr(int rank, int size) {
  return std::to_string(rank) + "-of-" + std::to_string(size);
}

}  // namespace

std::string OptimizerFileName(bool zero, int dp_rank, int dp, int tp_rank, int tp, int pp_rank,
                              int pp) {
  const std::string dp_part = zero ? "_dp-" + OfStr(dp_rank, dp) : std::string();
  return "optimizer_pp-" + OfStr(pp_rank, pp) + dp_part + "_tp-" + OfStr(tp_rank, tp) +
         "_exp-0-of-1.safetensors";
}

std::string RandomFileName(int dp_rank, int dp, int tp_rank, int tp, int pp_rank, int pp) {
  return "tp-" + OfStr(tp_rank, tp) + "_dp-" + OfStr(dp_rank, dp) + "_pp-" + OfStr(pp_rank, pp) +
         ".safetensors";
}

std::string ModelWeightPath(const std::string& name, bool sharded, int tp_rank, int tp, int pp_rank,
                            int pp) {
  std::string path = "model/";
  std::size_t last = name.rfind('.');
  std::string dir = name.substr(0, last);
  std::string leaf = name.substr(last + 1);
  for (char& c : dir) c = c == '.' ? '/' : c;
  path += dir + "/model_" + leaf;
  path += sharded
              ? "_pp-rank-" + OfStr(pp_rank, pp) + "_tp-rank-" + OfStr(tp_rank, tp) + ".safetensors"
              : std::string(".safetensors");
  return path;
}

}  // namespace strun::train
