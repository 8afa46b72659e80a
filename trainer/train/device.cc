#include "train/device.h"

#include <c10/core/Device.h>

#include <cstdlib>
#include <string>

#ifdef STRUN_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace strun::train {

bool UseCuda() {
#ifdef STRUN_WITH_CUDA
  const char* want = std::getenv("STRUN_TRAIN_DEVICE");
  if (want && std::string(want) == "cpu") return false;
  return c10::cuda::device_count() > 0;
#else
  return false;
#endif
}

void SetCudaDevice(int local_rank) {
#ifdef STRUN_WITH_CUDA
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(local_rank));
#else
  (void)local_rank;
#endif
}

void SynchronizeDevice(bool cuda) {
#ifdef STRUN_WITH_CUDA
  if (cuda) c10::cuda::device_synchronize();
#else
  (void)cuda;
#endif
}

DeviceMemory CudaMemory(bool cuda, int device) {
  DeviceMemory m;
#ifdef STRUN_WITH_CUDA
  if (cuda) {
    auto stats =
        c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
    m.allocated = static_cast<double>(stats.allocated_bytes[0].current);
    m.max_allocated = static_cast<double>(stats.allocated_bytes[0].peak);
    m.max_reserved = static_cast<double>(stats.reserved_bytes[0].peak);
  }
#else
  (void)cuda;
  (void)device;
#endif
  return m;
}

}  // namespace strun::train
