// parallel/data_parallel.h: what data parallelism adds to a step, over the flat fp32 buffers of
// optim/flat_buffer.h.
//
//   AllReduceGradients  the DP mean of the accumulated gradients, bucket by bucket (nanotron's
//                       DDP with model.ddp_bucket_cap_mb and ReduceOp.AVG)
//   ZeroShard           ZeRO-1 (optimizer.zero_stage 1): each DP rank updates an equal slice of
//                       the master weights; AllGather then gives every rank all of them
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "parallel/communicator.h"

namespace strun::parallel {

// fp32 elements in a bucket of `bucket_cap_mb` MiB (at least 1).
int64_t BucketElements(int64_t bucket_cap_mb);

// In place: grads := mean over the DP ranks, in slices of `bucket_elems` elements (one
// collective each, so that no rank needs a second buffer the size of the model).
void AllReduceGradients(Communicator& comm, const at::Tensor& grads, int64_t bucket_elems);

// The slice [begin, end) of the flat master weights that this rank's optimizer updates: an equal
// share with ZeRO-1 (FlatLayout::ShardRange; the layout is padded to a multiple of dp), all of
// them without.
class ZeroShard {
 public:
  ZeroShard() = default;
  ZeroShard(int64_t begin, int64_t end, bool sharded)
      : begin_(begin), end_(end), sharded_(sharded) {}

  int64_t begin() const { return begin_; }
  int64_t end() const { return end_; }
  int64_t numel() const { return end_ - begin_; }
  bool sharded() const { return sharded_; }

  // This rank's slice of a flat buffer (a view).
  at::Tensor Of(const at::Tensor& flat) const { return flat.narrow(0, begin_, numel()); }

  // After the optimizer step: every rank's updated slice into every rank's `master`. Nothing to
  // do without ZeRO-1 or with one rank.
  void AllGather(Communicator& comm, at::Tensor& master);

 private:
  int64_t begin_ = 0, end_ = 0;
  bool sharded_ = false;
  at::Tensor gathered_;  // this rank's slice, copied: the collective writes into `master` itself
};

}  // namespace strun::parallel
