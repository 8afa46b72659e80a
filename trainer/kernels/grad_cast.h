// kernels/grad_cast.h: the bf16 gradients of many parameters into their segments of one flat fp32
// buffer (optim/flat_buffer.h) in one pass: assigned for the step's first micro-batch, added for
// later ones. One launch per kGradSegmentsPerLaunch tensors instead of a copy or add kernel per
// tensor; a warp reads and writes contiguous runs (4 elements per thread, 16-byte fp32 stores).
//   segments[i].src: numel bf16 (null: the parameter got no gradient: zeros when assigning,
//   nothing when adding); flat[offset, offset + numel) receives it (+= when accumulate).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace strun::kernels {

struct GradSegment {
  const __nv_bfloat16* src = nullptr;
  int64_t offset = 0;
  int64_t numel = 0;
};

inline constexpr int kGradSegmentsPerLaunch = 64;

cudaError_t GradsToFlat(const GradSegment* segments, int count, float* flat, bool accumulate,
                        cudaStream_t stream);

}  // namespace strun::kernels
