// train/token_staging.h: micro-batches of token ids from the data stream to the model's device.
//
// On CUDA each micro-batch goes through one of two page-locked buffers allocated once, then one
// asynchronous int32 copy and a conversion to int64 on the device. Pinning a fresh tensor per step
// (Tensor::pin_memory) stalled the host for 6-18 ms in about half the steps on the H100 host,
// while the device had drained: 57 ms steps became 68 ms (bench/trainer/README.md).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace strun::train {

class TokenStaging {
 public:
  // Micro-batches of rows x cols int32 token ids, for `device` (CPU: no staging).
  TokenStaging(int64_t rows, int64_t cols, c10::Device device);
  ~TokenStaging();
  TokenStaging(const TokenStaging&) = delete;
  TokenStaging& operator=(const TokenStaging&) = delete;

  // The ids as an int64 [rows, cols] tensor on the device; `ids` may be reused once this returns.
  at::Tensor ToDevice(const std::vector<int32_t>& ids);

 private:
  struct Slots;  // the pinned buffers and the events of their last copies (CUDA builds)
  int64_t rows_, cols_;
  c10::Device device_;
  std::unique_ptr<Slots> slots_;
};

}  // namespace strun::train
