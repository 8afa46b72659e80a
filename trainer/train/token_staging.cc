#include "train/token_staging.h"

#include <ATen/ATen.h>

#include <cstring>
#include <stdexcept>

#ifdef STRUN_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace strun::train {

struct TokenStaging::Slots {
#ifdef STRUN_WITH_CUDA
  // Two, so that filling one does not wait for the copy out of the other.
  at::Tensor pinned[2];
  at::cuda::CUDAEvent copied[2];
  int next = 0;
#endif
};

TokenStaging::TokenStaging(int64_t rows, int64_t cols, c10::Device device)
    : rows_(rows), cols_(cols), device_(device), slots_(std::make_unique<Slots>()) {
#ifdef STRUN_WITH_CUDA
  if (device_.is_cuda()) {
    for (at::Tensor& p : slots_->pinned) {
      p = at::empty({rows_, cols_}, at::TensorOptions().dtype(at::kInt).pinned_memory(true));
    }
  }
#endif
}

TokenStaging::~TokenStaging() = default;

at::Tensor TokenStaging::ToDevice(const std::vector<int32_t>& ids) {
  if (static_cast<int64_t>(ids.size()) != rows_ * cols_) {
    throw std::invalid_argument("TokenStaging: a micro-batch of " + std::to_string(ids.size()) +
                                " ids, expected " + std::to_string(rows_ * cols_));
  }
#ifdef STRUN_WITH_CUDA
  if (device_.is_cuda()) {
    const int k = slots_->next;
    slots_->next ^= 1;
    slots_->copied[k].synchronize();  // the copy out of this buffer two micro-batches ago
    at::Tensor& pinned = slots_->pinned[k];
    std::memcpy(pinned.data_ptr<int32_t>(), ids.data(), ids.size() * sizeof(int32_t));
    at::Tensor on_device = pinned.to(device_, at::kInt, /*non_blocking=*/true);
    slots_->copied[k].record(c10::cuda::getCurrentCUDAStream(device_.index()));
    return on_device.to(at::kLong);
  }
#endif
  // from_blob does not own `ids`: the conversion copies.
  return at::from_blob(const_cast<int32_t*>(ids.data()), {rows_, cols_}, at::kInt).to(at::kLong);
}

}  // namespace strun::train
