#include "parallel/data_parallel.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace strun::parallel {

int64_t BucketElements(int64_t bucket_cap_mb) {
  return std::max<int64_t>(1, bucket_cap_mb * 1024 * 1024 / 4);
}

void AllReduceGradients(Communicator& comm, const at::Tensor& grads, int64_t bucket_elems) {
  for (int64_t b = 0; b < grads.numel(); b += bucket_elems) {
    at::Tensor bucket = grads.narrow(0, b, std::min(bucket_elems, grads.numel() - b));
    comm.AllReduceMean(bucket);
  }
}

void ZeroShard::AllGather(Communicator& comm, at::Tensor& master) {
  if (!sharded_ || comm.size() <= 1) return;
  gathered_ = Of(master).clone();
  comm.AllGather(gathered_, master);
}

}  // namespace strun::parallel
