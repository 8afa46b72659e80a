#include <cublasLt.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "kernels/gemm.h"

namespace strun::kernels {
namespace {

// The largest power of two (<= 256) dividing the address: cuBLASLt's kernels may assume it.
uint32_t Alignment(const void* p) {
  const auto v = reinterpret_cast<std::uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && v % a != 0) a /= 2;
  return a;
}

// Everything an algorithm and the descriptors depend on.
struct Key {
  int64_t m, n, k, lda, ldb, ldd;
  bool trans_a, trans_b, accumulate;
  int out;
  uint32_t align_a, align_b, align_c, align_d;
  auto Tie() const {
    return std::tie(m, n, k, lda, ldb, ldd, trans_a, trans_b, accumulate, out, align_a, align_b,
                    align_c, align_d);
  }
  bool operator<(const Key& o) const { return Tie() < o.Tie(); }
};

Key KeyOf(const GemmArgs& g) {
  const void* c = g.c != nullptr ? g.c : g.d;
  return Key{g.m,          g.n,           g.k,         g.lda,      g.ldb,          g.ldd,
             g.trans_a,    g.trans_b,     g.beta != 0, int(g.out), Alignment(g.a), Alignment(g.b),
             Alignment(c), Alignment(g.d)};
}

// cuBLASLt is column-major: the row-major D [m, n] is the column-major D^T [n, m] = op(B)^T
// op(A)^T, so cuBLASLt's "A" is our B and its "B" our A, each with its own transpose flag.
struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;  // cuBLASLt's A (our B), B, C/D
  cublasLtMatmulAlgo_t algo{};
  bool has_algo = false;
  ~Plan() {
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

struct DeviceState {
  cublasLtHandle_t handle = nullptr;
  std::map<Key, std::unique_ptr<Plan>> plans;
};

std::mutex g_mu;
std::map<int, DeviceState>& Devices() {
  static auto* devices = new std::map<int, DeviceState>();  // never destroyed: used at exit
  return *devices;
}

std::string Describe(const GemmArgs& g) {
  char buf[224];
  std::snprintf(buf, sizeof buf,
                "GEMM m=%lld n=%lld k=%lld (A%s lda=%lld, B%s ldb=%lld, ldd=%lld, %s out, beta=%g)",
                static_cast<long long>(g.m), static_cast<long long>(g.n),
                static_cast<long long>(g.k), g.trans_a ? "^T" : "", static_cast<long long>(g.lda),
                g.trans_b ? "^T" : "", static_cast<long long>(g.ldb), static_cast<long long>(g.ldd),
                g.out == GemmOut::kFloat ? "fp32" : "bf16", static_cast<double>(g.beta));
  return buf;
}

cudaError_t Fail(std::string* error, const GemmArgs& g, const char* what,
                 cublasStatus_t s = CUBLAS_STATUS_SUCCESS) {
  if (error) {
    *error = Describe(g) + ": " + what;
    if (s != CUBLAS_STATUS_SUCCESS) *error += std::string(": ") + cublasLtGetStatusString(s);
  }
  return cudaErrorInvalidValue;
}

bool ShapeOk(const GemmArgs& g) {
  if (g.m <= 0 || g.n <= 0 || g.k <= 0 || !g.a || !g.b || !g.d) return false;
  if (g.beta != 0 && g.c == nullptr) return false;
  const int64_t a_cols = g.trans_a ? g.m : g.k, b_cols = g.trans_b ? g.k : g.n;
  return g.lda >= a_cols && g.ldb >= b_cols && g.ldd >= g.n;
}

// Creates the descriptors of `g`'s problem.
cublasStatus_t CreateDescriptors(const GemmArgs& g, Plan& p) {
  cublasStatus_t s = cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  if (s != CUBLAS_STATUS_SUCCESS) return s;
  const cublasOperation_t lt_ta = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t lt_tb = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  s = cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &lt_ta, sizeof lt_ta);
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &lt_tb, sizeof lt_tb);
  }
  if (s != CUBLAS_STATUS_SUCCESS) return s;
  // Stored shapes, column-major: our B [k, n] row-major is [n, k] column-major, and so on.
  const auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
  s = g.trans_b ? cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, u(g.k), u(g.n), g.ldb)
                : cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, u(g.n), u(g.k), g.ldb);
  if (s != CUBLAS_STATUS_SUCCESS) return s;
  s = g.trans_a ? cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, u(g.m), u(g.k), g.lda)
                : cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, u(g.k), u(g.m), g.lda);
  if (s != CUBLAS_STATUS_SUCCESS) return s;
  const cudaDataType_t out = g.out == GemmOut::kFloat ? CUDA_R_32F : CUDA_R_16BF;
  return cublasLtMatrixLayoutCreate(&p.d, out, u(g.n), u(g.m), g.ldd);
}

cublasStatus_t Run(cublasLtHandle_t h, const Plan& p, const cublasLtMatmulAlgo_t& algo,
                   const GemmArgs& g, const void* c, void* d, void* workspace,
                   cudaStream_t stream) {
  return cublasLtMatmul(h, p.op, &g.alpha, g.b, p.a, g.a, p.b, &g.beta, c, p.d, d, p.d, &algo,
                        workspace, kGemmWorkspaceBytes, stream);
}

}  // namespace

size_t GemmOutputBytes(const GemmArgs& g) {
  return static_cast<size_t>(g.ldd) * static_cast<size_t>(g.m) * (g.out == GemmOut::kFloat ? 4 : 2);
}

bool GemmPlanned(const GemmArgs& g) {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  const std::lock_guard<std::mutex> lock(g_mu);
  auto& devices = Devices();
  auto it = devices.find(device);
  if (it == devices.end()) return false;
  auto plan = it->second.plans.find(KeyOf(g));
  return plan != it->second.plans.end() && plan->second->has_algo;
}

cudaError_t GemmPlan(const GemmArgs& g, GemmTuning tuning, void* scratch, void* workspace,
                     cudaStream_t stream, std::string* error) {
  if (!ShapeOk(g)) return Fail(error, g, "invalid shape, leading dimension or pointer");
  if (tuning == GemmTuning::kTimed && scratch == nullptr) {
    return Fail(error, g, "timed tuning needs a scratch output");
  }
  int device = 0;
  if (cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) return e;
  const std::lock_guard<std::mutex> lock(g_mu);
  DeviceState& state = Devices()[device];
  if (state.handle == nullptr) {
    if (cublasStatus_t s = cublasLtCreate(&state.handle); s != CUBLAS_STATUS_SUCCESS) {
      return Fail(error, g, "cublasLtCreate failed", s);
    }
  }
  const Key key = KeyOf(g);
  auto plan = std::make_unique<Plan>();
  if (cublasStatus_t s = CreateDescriptors(g, *plan); s != CUBLAS_STATUS_SUCCESS) {
    return Fail(error, g, "cannot describe the problem to cuBLASLt", s);
  }
  cublasLtMatmulPreference_t pref = nullptr;
  if (cublasStatus_t s = cublasLtMatmulPreferenceCreate(&pref); s != CUBLAS_STATUS_SUCCESS) {
    return Fail(error, g, "cublasLtMatmulPreferenceCreate failed", s);
  }
  const uint64_t ws = kGemmWorkspaceBytes;
  // Alignments as cuBLASLt sees its operands (its A is our B); candidates that need more are left
  // out.
  const uint32_t align_lt_a = key.align_b, align_lt_b = key.align_a;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                       sizeof ws);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                       &align_lt_a, sizeof align_lt_a);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                       &align_lt_b, sizeof align_lt_b);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                       &key.align_c, sizeof key.align_c);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                       &key.align_d, sizeof key.align_d);
  cublasLtMatmulHeuristicResult_t found[kGemmCandidates];
  int count = 0;
  const int want = tuning == GemmTuning::kTimed ? kGemmCandidates : 1;
  cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(state.handle, plan->op, plan->a, plan->b,
                                                    plan->d, plan->d, pref, want, found, &count);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS || count == 0) {
    return Fail(error, g, "cuBLASLt has no algorithm for it", s);
  }
  int best = 0;
  if (tuning == GemmTuning::kTimed && count > 1) {
    // Each candidate once to warm up, then three timed runs, into the scratch output; C is read
    // as it is (beta != 0) and left unchanged.
    const void* c = g.beta != 0 ? g.c : scratch;
    cudaEvent_t start = nullptr, stop = nullptr;
    if (cudaError_t e = cudaEventCreate(&start); e != cudaSuccess) return e;
    if (cudaError_t e = cudaEventCreate(&stop); e != cudaSuccess) {
      cudaEventDestroy(start);
      return e;
    }
    float best_ms = -1.0f;
    for (int i = 0; i < count; ++i) {
      if (found[i].state != CUBLAS_STATUS_SUCCESS) continue;
      if (Run(state.handle, *plan, found[i].algo, g, c, scratch, workspace, stream) !=
          CUBLAS_STATUS_SUCCESS) {
        continue;
      }
      cudaEventRecord(start, stream);
      bool ok = true;
      for (int r = 0; r < 3 && ok; ++r) {
        ok = Run(state.handle, *plan, found[i].algo, g, c, scratch, workspace, stream) ==
             CUBLAS_STATUS_SUCCESS;
      }
      cudaEventRecord(stop, stream);
      float ms = 0.0f;
      if (cudaEventSynchronize(stop) != cudaSuccess ||
          cudaEventElapsedTime(&ms, start, stop) != cudaSuccess || !ok) {
        continue;
      }
      if (best_ms < 0 || ms < best_ms) {
        best_ms = ms;
        best = i;
      }
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
    if (best_ms < 0) return Fail(error, g, "no cuBLASLt candidate ran");
  }
  plan->algo = found[best].algo;
  plan->has_algo = true;
  state.plans[key] = std::move(plan);
  return cudaSuccess;
}

cudaError_t Gemm(const GemmArgs& g, void* workspace, cudaStream_t stream, std::string* error) {
  if (!ShapeOk(g)) return Fail(error, g, "invalid shape, leading dimension or pointer");
  int device = 0;
  if (cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) return e;
  cublasLtHandle_t handle = nullptr;
  const Plan* plan = nullptr;
  {
    const std::lock_guard<std::mutex> lock(g_mu);
    auto& devices = Devices();
    auto it = devices.find(device);
    if (it != devices.end()) {
      auto p = it->second.plans.find(KeyOf(g));
      if (p != it->second.plans.end() && p->second->has_algo) {
        handle = it->second.handle;
        plan = p->second.get();
      }
    }
  }
  if (plan == nullptr) return Fail(error, g, "not planned (GemmPlan first)");
  const void* c = g.beta != 0 ? g.c : g.d;
  if (cublasStatus_t s = Run(handle, *plan, plan->algo, g, c, g.d, workspace, stream);
      s != CUBLAS_STATUS_SUCCESS) {
    return Fail(error, g, "cublasLtMatmul failed", s);
  }
  return cudaGetLastError();
}

}  // namespace strun::kernels
