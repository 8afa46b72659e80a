// fault_injection.h: test-only faults.
#include "checkpoint/fault_injection.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace strun::train {

bool FaultDue(const char* variable, int64_t step) {
  const char* v = std::getenv(variable);
  if (!v || std::to_string(step) != v) return false;
  const char* restart = std::getenv("TORCHELASTIC_RESTART_COUNT");
  return !restart || !*restart || std::string(restart) == "0";
}

void MaybeInjectCheckpointKill(int64_t step, const char* phase) {
  if (FaultDue("STRUN_TRAIN_FAULT_KILL_IN_CHECKPOINT", step)) {
    std::fprintf(stderr, "strun-train: fault injection: SIGKILL during checkpoint %lld (%s)\n",
                 static_cast<long long>(step), phase);
    std::fflush(stderr);
    ::kill(::getpid(), SIGKILL);
  }
}

void MaybeInjectWatchdogAbort(int64_t step, int rank) {
  if (!FaultDue("STRUN_TRAIN_FAULT_WATCHDOG_AT_STEP", step)) return;
  const char* r = std::getenv("STRUN_TRAIN_FAULT_RANK");
  if ((r && *r ? std::atoi(r) : 0) != rank) return;
  std::fprintf(
      stderr,
      "[rank%d]:[E ProcessGroupNCCL.cpp:616] [Rank %d] Watchdog caught collective operation "
      "timeout: "
      "WorkNCCL(SeqNum=%lld, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for "
      "600042 milliseconds before timing out. (strun-train fault injection at step %lld)\n"
      "[rank%d]:[E ProcessGroupNCCL.cpp:1664] [PG 0 Rank %d] Some NCCL operations have failed or "
      "timed "
      "out. Due to the asynchronous nature of CUDA kernels, subsequent GPU operations might run on "
      "corrupted/incomplete data. To avoid data inconsistency, we are taking the entire process "
      "down.\n",
      rank, rank, static_cast<long long>(step), static_cast<long long>(step), rank, rank);
  std::fflush(stderr);
  std::abort();
}

}  // namespace strun::train
