// checkpoint/fault_injection.h: faults strun-train injects into itself for the recovery tests
// (tests/recovery).
// Test-only environment variables; each fault fires only in the first attempt of a group
// (TORCHELASTIC_RESTART_COUNT unset or 0), so that the restarted group can finish.
//   STRUN_TRAIN_FAULT_KILL_IN_CHECKPOINT=<step>  SIGKILL half-way through that step's checkpoint
//                                                 (rank 0; checkpoint_save.cc, and each
//                                                 committing rank just before its rename,
//                                                 checkpoint_commit.cc)
//   STRUN_TRAIN_FAULT_WATCHDOG_AT_STEP=<step>     before that step's gradient all-reduce: print the
//                                                 message PyTorch's NCCL watchdog prints when a
//                                                 collective times out, then abort() (SIGABRT), as
//                                                 the watchdog does with
//                                                 TORCH_NCCL_ASYNC_ERROR_HANDLING
//   STRUN_TRAIN_FAULT_RANK=<rank>                 the rank the watchdog fault hits (default 0)
#pragma once

#include <cstdint>

namespace strun::train {

// True when `variable` names `step` and this is the group's first attempt.
bool FaultDue(const char* variable, int64_t step);

// The checkpoint fault (see above): SIGKILLs this process when it is due for `step`, after
// printing `phase` (where in the checkpoint it stopped); returns when it is not due.
void MaybeInjectCheckpointKill(int64_t step, const char* phase);

// The watchdog fault (see above); returns when it is not due.
void MaybeInjectWatchdogAbort(int64_t step, int rank);

}  // namespace strun::train
