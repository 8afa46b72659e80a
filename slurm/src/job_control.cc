// Job steps, step kills, job state and requeues through libslurm (job_control.h), each in a forked
// child.
#include "strun/slurm/job_control.h"

#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

#include <sstream>
#include <string>

#include "strun/slurm/slurm_child.h"

namespace strun::slurm {
namespace {

// Each call answers in CallInSlurmChild's protocol: "+payload" or "-error". Built by appending:
// GCC 12 reports a false -Wrestrict for "-" + std::string in the release build.
std::string SlurmFailure() {
  std::string out = "-";
  out += LastSlurmError();
  return out;
}

}  // namespace

Result<std::vector<uint32_t>> JobSteps(uint32_t job_id) {
  auto reply = CallInSlurmChild("listing the steps of job " + std::to_string(job_id), [job_id] {
    job_step_info_response_msg_t* steps = nullptr;
    if (slurm_get_job_steps(0, job_id, NO_VAL, &steps, SHOW_ALL) != SLURM_SUCCESS)
      return SlurmFailure();
    std::string out = "+";
    for (uint32_t i = 0; steps != nullptr && i < steps->job_step_count; ++i) {
      const auto& s = steps->job_steps[i];
      if (s.step_id.job_id != job_id || s.step_id.step_id >= SLURM_MAX_NORMAL_STEP_ID) continue;
      out += std::to_string(s.step_id.step_id) + "\n";
    }
    return out;
  });
  if (!reply) return reply.error();
  std::vector<uint32_t> ids;
  std::istringstream in(*reply);
  uint32_t id;
  while (in >> id) ids.push_back(id);
  return ids;
}

Status KillJobStep(uint32_t job_id, uint32_t step_id, int signal) {
  auto reply = CallInSlurmChild(
      "signalling step " + std::to_string(job_id) + "." + std::to_string(step_id), [=] {
        if (slurm_kill_job_step(job_id, step_id, uint16_t(signal)) != SLURM_SUCCESS) {
          int e = slurm_get_errno();
          // A step that ended meanwhile is what we wanted.
          if (e == ESLURM_ALREADY_DONE || e == ESLURM_INVALID_JOB_ID) return std::string("+");
          return SlurmFailure();
        }
        return std::string("+");
      });
  if (!reply) return reply.error();
  return {};
}

Result<std::string> JobState(uint32_t job_id) {
  return CallInSlurmChild("the state of job " + std::to_string(job_id), [job_id] {
    job_info_msg_t* jobs = nullptr;
    if (slurm_load_job(&jobs, job_id, SHOW_ALL) != SLURM_SUCCESS) return SlurmFailure();
    for (uint32_t i = 0; jobs != nullptr && i < jobs->record_count; ++i) {
      if (jobs->job_array[i].job_id != job_id) continue;
      static const char* const kNames[] = {"PENDING",   "RUNNING",   "SUSPENDED", "COMPLETED",
                                           "CANCELLED", "FAILED",    "TIMEOUT",   "NODE_FAIL",
                                           "PREEMPTED", "BOOT_FAIL", "DEADLINE",  "OUT_OF_MEMORY"};
      const uint32_t base = jobs->job_array[i].job_state & JOB_STATE_BASE;
      return std::string("+") +
             (base < sizeof kNames / sizeof kNames[0] ? kNames[base] : "UNKNOWN");
    }
    return std::string("-slurmctld does not know the job");
  });
}

Status RequeueJob(uint32_t job_id) {
  auto reply = CallInSlurmChild("requeueing job " + std::to_string(job_id), [job_id] {
    if (slurm_requeue(job_id, 0) != SLURM_SUCCESS) {
      int e = slurm_get_errno();
      std::string msg = "-slurm_requeue: ";
      msg += LastSlurmError();
      if (e == ESLURM_DISABLED || e == ESLURM_BATCH_ONLY)
        msg +=
            " (the job cannot be requeued: submit it with sbatch --requeue, or set JobRequeue=1 in "
            "slurm.conf)";
      return msg;
    }
    return std::string("+");
  });
  if (!reply) return reply.error();
  return {};
}

}  // namespace strun::slurm
