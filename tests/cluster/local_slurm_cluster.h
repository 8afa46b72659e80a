// tests/cluster/local_slurm_cluster.h: a real Slurm cluster on this machine, for tests.
//
// LocalSlurmCluster drives tests/cluster/slurm-cluster.sh: one slurmctld and `nodes` slurmd
// daemons named nid001, nid002, ... (NodeAddr 127.0.0.1, names that do not resolve), each slurmd in
// its own mount namespace with a private /tmp, so `srun --mpi=pmix` works across nodes. Jobs see
// the host's file system except /tmp: files a job must read or write go under shared_dir().
//
// The cluster is stopped by Stop() or the destructor, and, should the test process die first
// (crash, ctest timeout, SIGKILL), by the script's keeper process, which watches this process.
// Commands run through Run() get the cluster's environment (SLURM_CONF and STRUN_CLUSTER_*) on top
// of the test's own.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cluster/command.h"
#include "strun/result.h"

namespace strun::testing {

// The path of slurm-cluster.sh in the source tree.
std::string ClusterScriptPath();

struct ClusterOptions {
  int nodes = 4;
  int cpus_per_node = 4;
  std::string plugstack;                 // PlugStackConfig file; "" = the cluster's own (empty) one
  std::vector<std::string> spank_lines;  // lines for the cluster's own plugstack.conf
  std::vector<std::string> conf_lines;   // extra slurm.conf lines (before the node definitions)
};

struct ClusterProcess {
  pid_t pid;
  pid_t ppid;
  std::string comm;     // /proc/PID/comm
  std::string cmdline;  // arguments joined by spaces
};

class LocalSlurmCluster {
 public:
  // Starts a cluster and waits until every node is idle (a few seconds).
  static Result<std::unique_ptr<LocalSlurmCluster>> Start(const ClusterOptions& options = {});
  ~LocalSlurmCluster();  // stops the cluster
  LocalSlurmCluster(const LocalSlurmCluster&) = delete;
  LocalSlurmCluster& operator=(const LocalSlurmCluster&) = delete;

  // Kills the daemons and every process of their jobs and removes the cluster's files. Idempotent.
  Status Stop();

  // SLURM_CONF, STRUN_CLUSTER_ID, STRUN_CLUSTER_DIR, STRUN_CLUSTER_SHARED, STRUN_CLUSTER_NODELIST.
  const Env& env() const { return env_; }
  const std::string& slurm_conf() const { return env_.at("SLURM_CONF"); }
  const std::string& dir() const { return env_.at("STRUN_CLUSTER_DIR"); }
  // A directory every node and the test see (world-writable); /tmp is private to each node.
  const std::string& shared_dir() const { return env_.at("STRUN_CLUSTER_SHARED"); }
  const std::string& nodelist() const { return env_.at("STRUN_CLUSTER_NODELIST"); }
  int nodes() const { return options_.nodes; }
  // "nid001" for index 0.
  static std::string NodeName(int index);

  // Runs a shell command with the cluster's environment (plus `extra_env`).
  CommandResult Run(const std::string& command, std::chrono::duration<double> timeout,
                    const Env& extra_env = {}) const;
  // Starts a shell command with the cluster's environment in the background.
  std::unique_ptr<BackgroundCommand> Start(const std::string& command,
                                           const Env& extra_env = {}) const;

  // Submits a batch script (`sbatch --parsable SBATCH_ARGS SCRIPT SCRIPT_ARGS...`; SBATCH_ARGS is
  // shell text, the others are quoted here) and returns the job id.
  Result<long> Submit(const std::string& sbatch_args, const std::string& script,
                      const std::vector<std::string>& script_args = {},
                      const Env& extra_env = {}) const;
  // The job's state from scontrol ("RUNNING", "COMPLETED", "FAILED", ...), "" when unknown.
  std::string JobState(long job_id) const;
  // Waits until the job has left PENDING/CONFIGURING/RUNNING/COMPLETING; returns the final state.
  Result<std::string> WaitForJob(long job_id, std::chrono::duration<double> timeout) const;
  // The id of the (only) job with this name, waiting up to `timeout` for it to appear.
  Result<long> FindJob(const std::string& job_name, std::chrono::duration<double> timeout) const;

  // Cancels every job, waits until every node is idle again and kills what the jobs left behind
  // (processes that detached from their step): a clean cluster for the next test.
  Status Reset(std::chrono::duration<double> timeout = std::chrono::seconds(30)) const;

  // Processes the cluster runs other than its daemons (slurmctld, slurmd, slurmscriptd): the
  // slurmstepds and the jobs' processes, wherever they detached to.
  std::vector<ClusterProcess> JobProcesses() const;

  // A node failure: SIGKILLs node `name`'s slurmd and every process of its jobs at once. Slurm
  // marks it NOT_RESPONDING, then DOWN after SlurmdTimeout (set it with
  // ClusterOptions::conf_lines).
  Status KillNode(const std::string& name) const;
  // Starts a killed node's slurmd again (ReturnToService=2 makes it usable once it registers).
  Status RestartNode(const std::string& name) const;

  // The last lines of the daemons' logs, for failure messages.
  std::string LogTail(int lines = 30) const;

 private:
  LocalSlurmCluster(ClusterOptions options, Env env)
      : options_(std::move(options)), env_(std::move(env)) {}

  ClusterOptions options_;
  Env env_;
  bool stopped_ = false;
};

}  // namespace strun::testing
