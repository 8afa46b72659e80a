// The local Slurm cluster harness itself: nodes, srun, PMIx across nodes, private /tmp per node,
// sbatch, and clean-up after Stop(), after the owner dies and after a crash left a stale cluster.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "cluster/cluster_fixture.h"
#include "cluster/wait_for.h"

namespace strun::testing {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(line);
  return out;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool Alive(pid_t pid) {
  return kill(pid, 0) == 0 &&
         ReadFileOr("/proc/" + std::to_string(pid) + "/stat").find(") Z") == std::string::npos;
}

// Pids written, one per line, by a job into `file`.
std::vector<pid_t> PidsIn(const std::string& file) {
  std::vector<pid_t> pids;
  std::istringstream in(ReadFileOr(file));
  pid_t p;
  while (in >> p) pids.push_back(p);
  return pids;
}

class ClusterHarness : public ClusterTest {};

TEST_F(ClusterHarness, SrunSpansEveryNodeInSlurmOrder) {
  auto r = cluster().Run(
      "srun -N4 --ntasks-per-node=2 -l bash -c 'echo $SLURM_PROCID $SLURMD_NODENAME "
      "$SLURM_JOB_NODELIST $SLURM_TASKS_PER_NODE' | sort -n -k2",
      60s);
  ASSERT_TRUE(r.ok()) << r.Describe();
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 8u) << r.Describe();
  for (int rank = 0; rank < 8; ++rank) {
    std::istringstream fields(lines[rank].substr(lines[rank].find(':') + 1));
    int procid;
    std::string node, nodelist, tasks;
    fields >> procid >> node >> nodelist >> tasks;
    EXPECT_EQ(procid, rank);
    EXPECT_EQ(node, LocalSlurmCluster::NodeName(rank / 2));
    EXPECT_EQ(nodelist, "nid[001-004]");
    EXPECT_EQ(tasks, "2(x4)");
  }
}

TEST_F(ClusterHarness, NodeNamesDoNotResolveButNodeAddrIsLoopback) {
  auto r = cluster().Run(
      "getent hosts nid001; scontrol show node nid002 | grep -o 'NodeAddr=[^ ]*'", 30s);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();  // grep found NodeAddr
  EXPECT_EQ(r.out, "NodeAddr=127.0.0.1\n") << r.Describe();
}

TEST_F(ClusterHarness, PmixWorksAcrossNodes) {
  auto r = cluster().Run(
      "srun --mpi=pmix -N2 --ntasks-per-node=2 bash -c 'echo $PMIX_RANK $SLURMD_NODENAME "
      "${PMIX_NAMESPACE:+ns}' | sort -n",
      60s);
  ASSERT_TRUE(r.ok()) << r.Describe();
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.Describe();
  for (int rank = 0; rank < 4; ++rank)
    EXPECT_EQ(lines[rank],
              std::to_string(rank) + " " + LocalSlurmCluster::NodeName(rank / 2) + " ns")
        << r.Describe();
}

TEST_F(ClusterHarness, EachNodeHasItsOwnTmpAndAllShareTheSharedDir) {
  std::string shared = cluster().shared_dir();
  auto r = cluster().Run("srun -N4 bash -c 'touch /tmp/harness-$SLURMD_NODENAME " + shared +
                             "/harness-$SLURMD_NODENAME; sleep 0.3; "
                             "echo $SLURMD_NODENAME $(ls /tmp | grep -c ^harness-)' | sort",
                         60s);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.out, "nid001 1\nnid002 1\nnid003 1\nnid004 1\n") << r.Describe();
  for (int n = 0; n < 4; ++n) {
    std::string name = "harness-" + LocalSlurmCluster::NodeName(n);
    EXPECT_TRUE(Exists(shared + "/" + name)) << name;
    EXPECT_FALSE(Exists("/tmp/" + name)) << name << " leaked into the host's /tmp";
  }
}

TEST_F(ClusterHarness, SbatchJobRunsToCompletion) {
  std::string dir = cluster().shared_dir();
  std::string script = dir + "/harness-job.sh";
  ASSERT_TRUE(RunCommand("printf '#!/bin/bash\\nsrun hostname >/dev/null && echo "
                         "\"$SLURM_JOB_NUM_NODES $SLURM_NTASKS\"\\n' > " +
                             script,
                         10s)
                  .ok());
  auto id = cluster().Submit("-N3 --ntasks-per-node=1 -o " + dir + "/harness-job.out", script);
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto state = cluster().WaitForJob(*id, 60s);
  ASSERT_TRUE(state.ok()) << state.error().message << cluster().LogTail();
  EXPECT_EQ(*state, "COMPLETED") << ReadFileOr(dir + "/harness-job.out");
  EXPECT_EQ(ReadFileOr(dir + "/harness-job.out"), "3 3\n");
}

TEST_F(ClusterHarness, ResetCancelsJobsAndTheirDetachedProcesses) {
  std::string pids = cluster().shared_dir() + "/harness-reset.pids";
  auto job = cluster().Start(
      "srun -N2 bash -c '(setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! >>" + pids +
      "); sleep 1000'");
  ASSERT_TRUE(WaitFor([&] { return PidsIn(pids).size() == 2; }, 30s, 50ms))
      << job->Wait(1s).Describe();
  auto running = cluster().JobProcesses();
  EXPECT_TRUE(std::any_of(running.begin(), running.end(),
                          [](const ClusterProcess& p) { return p.comm == "slurmstepd"; }));
  ASSERT_TRUE(cluster().Reset().ok());
  auto r = job->Wait(30s);
  EXPECT_FALSE(r.timed_out) << r.Describe();
  for (pid_t p : PidsIn(pids))
    EXPECT_FALSE(Alive(p)) << "detached pid " << p << " survived Reset()";
  EXPECT_TRUE(cluster().JobProcesses().empty());
}

// A second cluster beside the shared one: Stop() kills its jobs, detached processes included.
TEST_F(ClusterHarness, StopKillsEveryProcessOfTheCluster) {
  ClusterOptions options;
  options.nodes = 2;
  auto second = LocalSlurmCluster::Start(options);
  ASSERT_TRUE(second.ok()) << second.error().message;
  LocalSlurmCluster& c = **second;
  EXPECT_NE(c.dir(), cluster().dir());
  std::string pids = c.shared_dir() + "/pids";
  auto job =
      c.Start("srun -N2 bash -c '(setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! >>" +
              pids + "); echo $$ >>" + pids + "; sleep 1000'");
  ASSERT_TRUE(WaitFor([&] { return PidsIn(pids).size() == 4; }, 30s, 50ms))
      << job->Wait(1s).Describe();
  auto victims = PidsIn(pids);
  std::string dir = c.dir();
  ASSERT_TRUE(c.Stop().ok());
  for (pid_t p : victims)
    EXPECT_TRUE(WaitFor([&] { return !Alive(p); }, 5s, 50ms)) << "pid " << p << " survived Stop()";
  EXPECT_FALSE(Exists(dir));
  // The srun client of the dead cluster is killed too, rather than waiting forever.
  auto r = job->Wait(10s);
  EXPECT_FALSE(r.timed_out) << r.Describe();
}

// The owner of a cluster dies without stopping it (a crashed test): the keeper stops it.
TEST_F(ClusterHarness, ClusterStopsWhenItsOwnerDies) {
  BackgroundCommand owner("sleep 1000");
  std::string script = ShellQuote(ClusterScriptPath());
  auto r = RunCommand(script + " start --nodes 1 --owner-pid " + std::to_string(owner.pid()), 60s);
  ASSERT_TRUE(r.ok()) << r.Describe();
  std::string dir = r.out.substr(r.out.find("STRUN_CLUSTER_DIR=") + 18);
  dir = dir.substr(0, dir.find('\n'));
  auto ctld = ReadFileOr(dir + "/run/slurmctld.pid");
  ASSERT_FALSE(ctld.empty());
  owner.Signal(SIGKILL);
  owner.Wait(5s);
  EXPECT_TRUE(WaitFor([&] { return !Exists(dir); }, 10s, 50ms))
      << dir << " still exists after its owner died";
  EXPECT_FALSE(Alive(std::stoi(ctld)));
}

// A cluster whose keeper was killed (as when the machine's session dies) is removed by the next
// start on the same slot.
TEST_F(ClusterHarness, NextStartRemovesAStaleCluster) {
  std::string script = ShellQuote(ClusterScriptPath());
  auto first = RunCommand(script + " start --nodes 1 --id 6", 60s);
  ASSERT_TRUE(first.ok()) << first.Describe();
  std::string dir = "/var/tmp/strun-cluster-6";
  std::string ctld = ReadFileOr(dir + "/run/slurmctld.pid");
  std::string keeper = ReadFileOr(dir + "/run/keeper.pid");
  ASSERT_FALSE(ctld.empty());
  ASSERT_FALSE(keeper.empty());
  kill(std::stoi(keeper), SIGKILL);
  EXPECT_TRUE(WaitFor([&] { return !Alive(std::stoi(keeper)); }, 5s, 50ms));
  auto status = RunCommand(script + " status --id 6", 30s);
  EXPECT_NE(status.exit_code, 0) << status.Describe();
  EXPECT_NE(status.out.find("stale"), std::string::npos) << status.Describe();

  auto second = RunCommand(script + " start --nodes 1 --id 6", 60s);
  ASSERT_TRUE(second.ok()) << second.Describe();
  EXPECT_NE(second.err.find("removing stale cluster 6"), std::string::npos) << second.Describe();
  EXPECT_FALSE(Alive(std::stoi(ctld))) << "the stale slurmctld survived";
  auto srun = RunCommand("srun -N1 true", 30s, {{"SLURM_CONF", dir + "/slurm.conf"}});
  EXPECT_TRUE(srun.ok()) << srun.Describe();
  auto stop = RunCommand(script + " stop --id 6", 60s);
  EXPECT_TRUE(stop.ok()) << stop.Describe();
  EXPECT_FALSE(Exists(dir));
}

}  // namespace
}  // namespace strun::testing
