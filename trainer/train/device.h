// train/device.h: the device a rank trains on. No torch in this header.
//
// A GPU where libtorch has CUDA and one is visible (STRUN_TRAIN_DEVICE=cpu forces the CPU), the
// one of LOCAL_RANK; the CPU otherwise.
#pragma once

namespace strun::train {

// Whether this process runs on CUDA.
bool UseCuda();
// Makes GPU `local_rank` current (before the process group: NCCL binds to it).
void SetCudaDevice(int local_rank);
// Waits for the device's queued work (timings); nothing on the CPU.
void SynchronizeDevice(bool cuda);

// The caching allocator's counters in bytes (0 on the CPU).
struct DeviceMemory {
  double allocated = 0, max_allocated = 0, max_reserved = 0;
};
DeviceMemory CudaMemory(bool cuda, int device);

}  // namespace strun::train
