#include "kernels/grad_cast.h"
#include "kernels/vec.cuh"

namespace strun::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kTile = kThreads * 8;  // elements of one block iteration: 8 per thread

// Passed by value (kernel parameter space, ~2 KB: no copy of a table to the device);
// __grid_constant__ lets the kernel index it without a per-thread copy.
struct SegmentTable {
  const bf16* src[kGradSegmentsPerLaunch];
  int64_t offset[kGradSegmentsPerLaunch];
  int64_t numel[kGradSegmentsPerLaunch];
  int64_t first_tile[kGradSegmentsPerLaunch + 1];  // prefix sums of each segment's tiles
  int count;
};

// 4 elements at src (null: zeros) into dst; a 16-byte fp32 store where aligned.
template <bool kAdd>
__device__ __forceinline__ void CastFour(const bf16* src, float* dst, int n) {
  if (n == 4 && reinterpret_cast<std::uintptr_t>(dst) % 16 == 0 &&
      reinterpret_cast<std::uintptr_t>(src) % 8 == 0) {
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (src != nullptr) {
      const uint2 raw = *reinterpret_cast<const uint2*>(src);
      const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
      const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
      v = make_float4(a.x, a.y, b.x, b.y);
    }
    float4* d = reinterpret_cast<float4*>(dst);
    if (kAdd) {
      const float4 o = *d;
      v.x += o.x, v.y += o.y, v.z += o.z, v.w += o.w;
    }
    *d = v;
    return;
  }
  for (int j = 0; j < n; ++j) {
    const float x = src != nullptr ? __bfloat162float(src[j]) : 0.0f;
    dst[j] = kAdd ? dst[j] + x : x;
  }
}

// A tile is kTile elements of one segment; thread t takes elements 4t..4t+3 of each half, so
// that a warp's loads and stores are contiguous.
template <bool kAdd>
__global__ void __launch_bounds__(kThreads)
    GradsToFlatKernel(const __grid_constant__ SegmentTable t, float* flat) {
  const int64_t tiles = t.first_tile[t.count];
  int seg = 0;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    while (t.first_tile[seg + 1] <= tile) ++seg;  // tiles only grow within a block's loop
    const int64_t numel = t.numel[seg];
    const int64_t base = (tile - t.first_tile[seg]) * kTile;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t at = base + half * (kTile / 2) + int64_t{threadIdx.x} * 4;
      if (at >= numel) continue;
      const int n = numel - at < 4 ? static_cast<int>(numel - at) : 4;
      CastFour<kAdd>(t.src[seg] != nullptr ? t.src[seg] + at : nullptr, flat + t.offset[seg] + at,
                     n);
    }
  }
}

}  // namespace

cudaError_t GradsToFlat(const GradSegment* segments, int count, float* flat, bool accumulate,
                        cudaStream_t stream) {
  if (count < 0 || flat == nullptr || (count > 0 && segments == nullptr)) {
    return cudaErrorInvalidValue;
  }
  for (int first = 0; first < count; first += kGradSegmentsPerLaunch) {
    SegmentTable t{};
    t.count = count - first < kGradSegmentsPerLaunch ? count - first : kGradSegmentsPerLaunch;
    for (int i = 0; i < t.count; ++i) {
      const GradSegment& s = segments[first + i];
      if (s.numel < 0 || s.offset < 0) return cudaErrorInvalidValue;
      // Adding nothing: an empty segment.
      const bool skip = accumulate && s.src == nullptr;
      t.src[i] = s.src;
      t.offset[i] = s.offset;
      t.numel[i] = skip ? 0 : s.numel;
      t.first_tile[i + 1] = t.first_tile[i] + (t.numel[i] + kTile - 1) / kTile;
    }
    const int64_t tiles = t.first_tile[t.count];
    if (tiles == 0) continue;
    const int grid = GridFor(tiles * kThreads, kThreads);
    if (accumulate) {
      GradsToFlatKernel<true><<<grid, kThreads, 0, stream>>>(t, flat);
    } else {
      GradsToFlatKernel<false><<<grid, kThreads, 0, stream>>>(t, flat);
    }
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

}  // namespace strun::kernels
