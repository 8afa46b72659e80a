// kernels/gemm.h: the model's bf16 GEMMs through cuBLASLt, each distinct problem's algorithm picked
// once per process by timing cuBLASLt's candidates for it (an autotuner, as cuBLAS itself only
// estimates). Row-major throughout:
//   D[m, n] = alpha * op(A) op(B) + beta * C
//   op(A) is [m, k]: A stored [m, k] (trans_a false, lda >= k) or [k, m] (trans_a true, lda >= m);
//   op(B) is [k, n]: B stored [k, n] (trans_b false, ldb >= n) or [n, k] (trans_b true, ldb >= k);
//   C and D are [m, n] with the leading dimension ldd, bf16 or fp32 (`out`); C may be D (in
//   place) or null (beta must then be 0).
// fp32 accumulation (CUBLAS_COMPUTE_32F) in every case.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace strun::kernels {

enum class GemmOut { kBf16, kFloat };

struct GemmArgs {
  const __nv_bfloat16* a = nullptr;
  int64_t lda = 0;
  bool trans_a = false;
  const __nv_bfloat16* b = nullptr;
  int64_t ldb = 0;
  bool trans_b = false;
  const void* c = nullptr;
  void* d = nullptr;
  int64_t ldd = 0;
  GemmOut out = GemmOut::kBf16;
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1.0f, beta = 0.0f;
};

// How an algorithm is chosen for a problem seen for the first time.
enum class GemmTuning {
  kHeuristic,  // cuBLASLt's first candidate (what cuBLAS would run)
  kTimed,      // the fastest of up to kGemmCandidates candidates, each timed on the stream
};
inline constexpr int kGemmCandidates = 16;

// Bytes of workspace every call is given (the same buffer each time: one stream).
inline constexpr size_t kGemmWorkspaceBytes = size_t{32} << 20;

// True when `args`' problem (shapes, layouts, dtypes, beta, pointer alignments) has its algorithm.
bool GemmPlanned(const GemmArgs& args);

// Chooses the algorithm for `args`' problem. kTimed runs candidates on `stream` and waits for
// them: `scratch` (bytes of D, ldd * m elements of `out`) receives their results so that C and D
// are left as they were. Not allowed while `stream` is being captured into a CUDA graph. Errors
// name the problem.
cudaError_t GemmPlan(const GemmArgs& args, GemmTuning tuning, void* scratch, void* workspace,
                     cudaStream_t stream, std::string* error);

// Runs the planned algorithm (GemmPlanned must hold). Errors name the problem.
cudaError_t Gemm(const GemmArgs& args, void* workspace, cudaStream_t stream, std::string* error);

// The bytes D takes: ldd * m elements of `out`.
size_t GemmOutputBytes(const GemmArgs& args);

}  // namespace strun::kernels
