// strun/slurm/job_control.h: what strund asks of slurmctld about its own job, besides node states
// (node_state.h): the job's steps, killing a step, the job's state, requeueing the job.
//
// Each call runs libslurm in a forked child with a deadline (10 s), as the rest of strun/slurm does
// (slurm_child.h), so that libslurm's fatal() or an unreachable controller can neither end nor hang
// the caller. A process with threads (strund) makes these calls through strund's SlurmBroker
// (daemon/slurm_broker.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::slurm {

// The ids of the job's ordinary steps (srun steps; not the batch, extern or interactive step).
Result<std::vector<uint32_t>> JobSteps(uint32_t job_id);

// slurm_kill_job_step: sends `signal` to every task of the step.
Status KillJobStep(uint32_t job_id, uint32_t step_id, int signal);

// The job's state without its flags, as squeue names it: "RUNNING", "CANCELLED", "TIMEOUT", ...
Result<std::string> JobState(uint32_t job_id);

// slurm_requeue(job_id, 0): ends the job's steps and puts it back in the queue; the job must be
// requeueable (sbatch --requeue, or JobRequeue=1 in slurm.conf). A job that is not gets an error
// that says so.
Status RequeueJob(uint32_t job_id);

}  // namespace strun::slurm
