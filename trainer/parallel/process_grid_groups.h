// parallel/process_grid_groups.h: the c10d process groups of a ProcessGrid (process_grid.h), and
// CommGroup, the handle the TP/PP code communicates through.
//
// Every rank creates the groups it belongs to in nanotron's order (kGroupCreationOrder; within a
// kind, groups partition the world, so a rank joins one group per kind): gloo's constructor waits
// for all members, and creating kinds in the same order on every rank rules out waiting cycles.
// Identical rank sets share one group, as nanotron's world_ranks_to_pg (with pp = 1, mp is tp).
// Each group lives under its own store prefix, named after the first kind and index that created
// it, so nothing depends on a global counter. Groups of one rank have no backend: their
// collectives are the identity.
//
// With pp > 1 every rank also joins a second group of its pp group's ranks, pp_backward(), for the
// gradients that pipeline stages send back (pp() carries the activations forward). On NCCL, the
// point-to-point operations between two ranks of one group run in order on one stream, and a send
// waits for its receive: with both directions on one stream, a 1f1b stage's next activation send
// and its peer's gradient send could wait for each other. One group per direction keeps each
// stream in the order both sides issue it.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/torch_compat.h"
#include "parallel/process_grid.h"
#include "strun/result.h"

namespace strun::parallel {

// A collective in flight. Wait() blocks until it finished and its output is valid (on NCCL: is
// ordered before later work on the current stream). Waiting twice is a no-op; a default one is
// already done.
class PendingWork {
 public:
  PendingWork() = default;
  PendingWork(c10::intrusive_ptr<::c10d::Work> work, std::function<void()> finish)
      : work_(std::move(work)), finish_(std::move(finish)) {}
  void Wait();

 private:
  c10::intrusive_ptr<::c10d::Work> work_;
  std::function<void()> finish_;  // e.g. copying a slice out of a staging buffer
};

// One process group: its members (ascending world ranks), this rank's index among them, and the
// collectives the model-parallel code needs. Reference counted (a torch custom-class holder) so
// autograd nodes can keep it alive until backward.
class CommGroup : public torch::CustomClassHolder {
 public:
  // backend may be null only when world_ranks has one element.
  CommGroup(c10::intrusive_ptr<compat::CommBackend> backend, std::vector<int> world_ranks,
            int rank);

  int rank() const { return rank_; }
  int size() const { return static_cast<int>(world_ranks_.size()); }
  const std::vector<int>& world_ranks() const { return world_ranks_; }
  bool nccl() const { return nccl_; }

  // In place over the group; op is c10d's SUM, MAX, ...
  PendingWork AllReduce(at::Tensor& tensor, ::c10d::ReduceOp op = ::c10d::ReduceOp::SUM);
  // out [size() * in.size(0), ...] (contiguous) := the members' `in` concatenated along dim 0.
  PendingWork AllGatherDim0(const at::Tensor& in, at::Tensor& out);
  // out [in.size(0) / size(), ...] (contiguous) := this rank's dim-0 slice of the sum of the
  // members' `in`. On gloo (no reduce-scatter there) an all-reduce of a copy, then the slice.
  PendingWork ReduceScatterDim0(const at::Tensor& in, at::Tensor& out);
  // Point to point within the group (pipeline stages); tag distinguishes streams of messages.
  PendingWork Send(at::Tensor& tensor, int dst_rank, int tag = 0);
  PendingWork Recv(at::Tensor& tensor, int src_rank, int tag = 0);

  const c10::intrusive_ptr<compat::CommBackend>& backend() const { return backend_; }

 private:
  // gloo (libtorch 1.13) has no bf16/fp16 collectives ("Invalid scalar type"): such tensors go
  // through an fp32 copy, summed in fp32 and rounded once. NCCL takes them as they are.
  bool NeedsFloatStaging(const at::Tensor& t) const;

  c10::intrusive_ptr<compat::CommBackend> backend_;
  std::vector<int> world_ranks_;
  int rank_ = 0;
  bool nccl_ = false;
};
using CommGroupPtr = c10::intrusive_ptr<CommGroup>;

// A group of one rank (every collective the identity): unsharded runs and tests.
CommGroupPtr SingleRankGroup();

// Makes the backend of one group: store (already prefixed for the group), rank within it, size.
using BackendFactory = std::function<c10::intrusive_ptr<compat::CommBackend>(
    const c10::intrusive_ptr<::c10d::Store>& store, int rank, int size)>;

// gloo over TCP. hostname: the interface to bind ("127.0.0.1" for ranks on one host, as tests);
// empty: GLOO_SOCKET_IFNAME if set, else gloo's default device.
BackendFactory GlooBackendFactory(std::chrono::milliseconds timeout, std::string hostname = "",
                                  int threads = 2);
#ifdef STRUN_HAVE_NCCL
// NCCL on the current CUDA device.
BackendFactory NcclBackendFactory(std::chrono::milliseconds timeout);
#endif

class ProcessGroups {
 public:
  // Creates this rank's groups of every kind over `store` (shared by all ranks: a TCPStore, or a
  // HashStore for ranks that are threads). Errors name the group and the backend's message.
  static Result<std::unique_ptr<ProcessGroups>> Create(
      const ProcessGrid& grid, int world_rank, const c10::intrusive_ptr<::c10d::Store>& store,
      const BackendFactory& factory);

  const ProcessGrid& grid() const { return grid_; }
  int world_rank() const { return world_rank_; }
  GridCoords coords() const { return grid_.Coords(world_rank_); }

  const CommGroupPtr& Get(GroupKind kind) const { return groups_.at(kind); }
  const CommGroupPtr& world() const { return Get(GroupKind::kWorld); }
  const CommGroupPtr& tp() const { return Get(GroupKind::kTp); }
  const CommGroupPtr& dp() const { return Get(GroupKind::kDp); }
  const CommGroupPtr& pp() const { return Get(GroupKind::kPp); }
  const CommGroupPtr& mp() const { return Get(GroupKind::kMp); }
  // The pp group's ranks again, for gradients sent to earlier stages (see above). pp() when pp = 1.
  const CommGroupPtr& pp_backward() const { return pp_backward_; }

 private:
  ProcessGroups(const ProcessGrid& grid, int world_rank) : grid_(grid), world_rank_(world_rank) {}
  ProcessGrid grid_;
  int world_rank_;
  std::map<GroupKind, CommGroupPtr> groups_;
  CommGroupPtr pp_backward_;
};

}  // namespace strun::parallel
