// parallel/communicator.h: the world process group of strun-train (all ranks; at tp = 1 also the
// data-parallel group), and from it the grid's groups for tensor parallelism.
//
// Rank 0 hosts a c10d TCPStore on MASTER_PORT (as torchrun does with
// TORCHELASTIC_USE_AGENT_STORE=False); every rank joins a gloo (CPU) or NCCL (GPU) group through
// it. With one process no group is created and every collective is the identity. Collectives are
// blocking from the host's point of view on gloo; on NCCL they are ordered on the current stream,
// so no host synchronisation is added.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <memory>
#include <vector>

#include "parallel/process_grid.h"
#include "parallel/torchrun_env.h"
#include "strun/result.h"

namespace strun::parallel {

class CommGroup;
class ProcessGroups;

class Communicator {
 public:
  enum class Backend { kGloo, kNccl };

  // Connects to (rank 0: hosts) the store and creates the group. Errors name MASTER_ADDR/PORT.
  static Result<std::unique_ptr<Communicator>> Create(const TorchrunEnv& env, Backend backend,
                                                      std::chrono::seconds timeout);
  ~Communicator();

  int rank() const { return rank_; }
  int size() const { return size_; }

  // In place: tensor := sum over ranks / size.
  void AllReduceMean(at::Tensor& tensor);
  // In place: tensor := sum over ranks.
  void AllReduceSum(at::Tensor& tensor);
  // out (size() * shard.numel() elements, contiguous) := concatenation of every rank's shard.
  void AllGather(const at::Tensor& shard, at::Tensor& out);
  // In place: every rank gets root's tensor.
  void Broadcast(at::Tensor& tensor, int root);
  // Waits until every rank got here.
  void Barrier();

  // The groups of `grid` (process_grid_groups.h: tp, dp, ...) over this communicator's store, on
  // its backend kind (gloo: bound as the world group is; NCCL: the current device). Collective
  // over the world; grid.world_size() must be size().
  Result<std::unique_ptr<ProcessGroups>> CreateGridGroups(const ProcessGrid& grid);
  // A Communicator over `group`'s backend (e.g. the dp group at tp > 1), so that data parallelism
  // (data_parallel.h) runs over it unchanged. `group` must outlive the result.
  std::unique_ptr<Communicator> ForGroup(const CommGroup& group) const;

 private:
  struct Impl;
  Communicator(int rank, int size, std::unique_ptr<Impl> impl);
  int rank_;
  int size_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strun::parallel
