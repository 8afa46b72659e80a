#include "cluster/local_slurm_cluster.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#ifndef STRUN_CLUSTER_SCRIPT
#error "STRUN_CLUSTER_SCRIPT must name tests/cluster/slurm-cluster.sh"
#endif

namespace strun::testing {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  if (DIR* d = opendir(path.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
  }
  return names;
}

bool IsNumber(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

// pid -> (ppid, state) from /proc.
std::map<pid_t, std::pair<pid_t, char>> ProcessTable() {
  std::map<pid_t, std::pair<pid_t, char>> table;
  for (const auto& name : ListDir("/proc")) {
    if (!IsNumber(name)) continue;
    std::string stat = ReadFileOr("/proc/" + name + "/stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 4 > stat.size()) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    pid_t ppid;
    if (rest >> state >> ppid) table[pid_t(std::stol(name))] = {ppid, state};
  }
  return table;
}

}  // namespace

std::string ClusterScriptPath() { return STRUN_CLUSTER_SCRIPT; }

std::string LocalSlurmCluster::NodeName(int index) {
  char buf[16];
  snprintf(buf, sizeof buf, "nid%03d", index + 1);
  return buf;
}

Result<std::unique_ptr<LocalSlurmCluster>> LocalSlurmCluster::Start(const ClusterOptions& options) {
  std::string cmd = ShellQuote(ClusterScriptPath()) + " start --owner-pid " +
                    std::to_string(getpid()) + " --nodes " + std::to_string(options.nodes) +
                    " --cpus " + std::to_string(options.cpus_per_node);
  if (!options.plugstack.empty()) cmd += " --plugstack " + ShellQuote(options.plugstack);
  for (const auto& line : options.spank_lines) cmd += " --spank " + ShellQuote(line);
  for (const auto& line : options.conf_lines) cmd += " --conf " + ShellQuote(line);
  // Up to 120 s waiting for a slot held by another test run, then a few seconds to start.
  CommandResult r = RunCommand(cmd, std::chrono::seconds(200));
  if (!r.ok()) return MakeError("cannot start the local Slurm cluster:\n" + r.Describe());
  Env env;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    const std::string prefix = "export ";
    if (line.rfind(prefix, 0) != 0) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    env[line.substr(prefix.size(), eq - prefix.size())] = line.substr(eq + 1);
  }
  for (const char* key : {"SLURM_CONF", "STRUN_CLUSTER_ID", "STRUN_CLUSTER_DIR",
                          "STRUN_CLUSTER_SHARED", "STRUN_CLUSTER_NODELIST"}) {
    if (!env.count(key))
      return MakeError(std::string("slurm-cluster.sh start printed no ") + key + ":\n" +
                       r.Describe());
  }
  return std::unique_ptr<LocalSlurmCluster>(new LocalSlurmCluster(options, std::move(env)));
}

LocalSlurmCluster::~LocalSlurmCluster() { (void)Stop(); }

Status LocalSlurmCluster::Stop() {
  if (stopped_) return {};
  stopped_ = true;
  CommandResult r =
      RunCommand(ShellQuote(ClusterScriptPath()) + " stop --id " + env_.at("STRUN_CLUSTER_ID"),
                 std::chrono::seconds(60));
  if (!r.ok()) return MakeError("cannot stop the local Slurm cluster:\n" + r.Describe());
  return {};
}

Status LocalSlurmCluster::KillNode(const std::string& name) const {
  CommandResult r = RunCommand(ShellQuote(ClusterScriptPath()) + " kill-node " + ShellQuote(name) +
                                   " --id " + env_.at("STRUN_CLUSTER_ID"),
                               std::chrono::seconds(30));
  if (!r.ok()) return MakeError("cannot kill node " + name + ":\n" + r.Describe());
  return {};
}

Status LocalSlurmCluster::RestartNode(const std::string& name) const {
  CommandResult r = RunCommand(ShellQuote(ClusterScriptPath()) + " restart-node " +
                                   ShellQuote(name) + " --id " + env_.at("STRUN_CLUSTER_ID"),
                               std::chrono::seconds(30));
  if (!r.ok()) return MakeError("cannot restart node " + name + ":\n" + r.Describe());
  return {};
}

CommandResult LocalSlurmCluster::Run(const std::string& command,
                                     std::chrono::duration<double> timeout,
                                     const Env& extra_env) const {
  Env env = env_;
  for (const auto& [k, v] : extra_env) env[k] = v;
  return RunCommand(command, timeout, env);
}

std::unique_ptr<BackgroundCommand> LocalSlurmCluster::Start(const std::string& command,
                                                            const Env& extra_env) const {
  Env env = env_;
  for (const auto& [k, v] : extra_env) env[k] = v;
  return std::make_unique<BackgroundCommand>(command, env);
}

Result<long> LocalSlurmCluster::Submit(const std::string& sbatch_args, const std::string& script,
                                       const std::vector<std::string>& script_args,
                                       const Env& extra_env) const {
  std::string cmd = "sbatch --parsable " + sbatch_args + " " + ShellQuote(script);
  for (const auto& a : script_args) cmd += " " + ShellQuote(a);
  CommandResult r = Run(cmd, std::chrono::seconds(30), extra_env);
  if (!r.ok()) return MakeError("sbatch failed:\n" + r.Describe());
  std::string id = Trim(r.out);
  id = id.substr(0, id.find(';'));  // --parsable prints "ID" or "ID;CLUSTER"
  if (!IsNumber(id)) return MakeError("sbatch printed no job id:\n" + r.Describe());
  return std::stol(id);
}

std::string LocalSlurmCluster::JobState(long job_id) const {
  CommandResult r = Run("scontrol -o show job " + std::to_string(job_id), std::chrono::seconds(20));
  if (!r.ok()) return "";
  size_t at = r.out.find("JobState=");
  if (at == std::string::npos) return "";
  at += 9;
  return r.out.substr(at, r.out.find_first_of(" \n", at) - at);
}

Result<std::string> LocalSlurmCluster::WaitForJob(long job_id,
                                                  std::chrono::duration<double> timeout) const {
  static const std::set<std::string> active = {"PENDING",    "CONFIGURING", "RUNNING",
                                               "COMPLETING", "SUSPENDED",   "REQUEUED",
                                               "RESIZING",   "SIGNALING",   "STAGE_OUT"};
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::nanoseconds>(timeout);
  std::string state;
  while (std::chrono::steady_clock::now() < deadline) {
    state = JobState(job_id);
    if (!state.empty() && !active.count(state)) return state;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return MakeError("job " + std::to_string(job_id) + " still " +
                   (state.empty() ? "unknown" : state) + " after " +
                   std::to_string(int(timeout.count())) + "s");
}

Result<long> LocalSlurmCluster::FindJob(const std::string& job_name,
                                        std::chrono::duration<double> timeout) const {
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::nanoseconds>(timeout);
  while (std::chrono::steady_clock::now() < deadline) {
    CommandResult r = Run("squeue -h -o %i -n " + ShellQuote(job_name), std::chrono::seconds(20));
    std::string id = Trim(r.out);
    if (r.ok() && IsNumber(id)) return std::stol(id);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return MakeError("no job named " + job_name + " appeared in squeue within " +
                   std::to_string(int(timeout.count())) + "s");
}

Status LocalSlurmCluster::Reset(std::chrono::duration<double> timeout) const {
  // scancel without a filter refuses; every job here is root's.
  Run("scancel --user=root", std::chrono::seconds(20));
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::nanoseconds>(timeout);
  auto settled = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  std::string states;
  while (std::chrono::steady_clock::now() < deadline) {
    CommandResult r = Run("sinfo -h -N -o %T; squeue -h -o %i", std::chrono::seconds(20));
    states = r.out;
    int idle = 0, lines = 0;
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
      ++lines;
      if (line == "idle") ++idle;
    }
    // Processes that detached from their step outlive it under proctrack/linuxproc (and keep a
    // step completing for a minute when they hold its output): kill them as a cgroup would.
    bool quiet = r.ok() && idle == options_.nodes && lines == options_.nodes;
    bool left = false;
    if (quiet || std::chrono::steady_clock::now() > settled) {
      for (const auto& p : JobProcesses()) {
        if (p.comm == "slurmstepd") continue;
        kill(p.pid, SIGKILL);
        left = true;
      }
    }
    if (quiet && !left) return {};
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return MakeError("the cluster did not become idle with no jobs within " +
                   std::to_string(int(timeout.count())) + "s; node states and jobs:\n" + states);
}

std::vector<ClusterProcess> LocalSlurmCluster::JobProcesses() const {
  std::set<pid_t> pids;
  std::string cgroup = Trim(ReadFileOr(dir() + "/run/cgroup"));
  auto table = ProcessTable();
  if (!cgroup.empty()) {
    for (const auto& sub : ListDir(cgroup)) {
      std::istringstream procs(ReadFileOr(cgroup + "/" + sub + "/cgroup.procs"));
      pid_t p;
      while (procs >> p) pids.insert(p);
    }
  } else {
    // Without a cgroup: descendants of the daemons.
    for (const auto& name : ListDir(dir() + "/run")) {
      if (name.size() < 4 || name.substr(name.size() - 4) != ".pid" || name == "keeper.pid")
        continue;
      std::string p = Trim(ReadFileOr(dir() + "/run/" + name));
      if (IsNumber(p)) pids.insert(pid_t(std::stol(p)));
    }
    for (bool grew = true; grew;) {
      grew = false;
      for (const auto& [pid, info] : table) {
        if (!pids.count(pid) && pids.count(info.first)) grew = pids.insert(pid).second || grew;
      }
    }
  }
  std::vector<ClusterProcess> out;
  for (pid_t p : pids) {
    auto it = table.find(p);
    if (it == table.end() || it->second.second == 'Z') continue;
    std::string comm = Trim(ReadFileOr("/proc/" + std::to_string(p) + "/comm"));
    if (comm == "slurmctld" || comm == "slurmd" || comm == "slurmscriptd") continue;
    std::string cmdline = ReadFileOr("/proc/" + std::to_string(p) + "/cmdline");
    for (char& c : cmdline)
      if (c == '\0') c = ' ';
    out.push_back({p, it->second.first, comm, Trim(cmdline)});
  }
  return out;
}

std::string LocalSlurmCluster::LogTail(int lines) const {
  CommandResult r =
      RunCommand("tail -n " + std::to_string(lines) + " " + ShellQuote(dir()) + "/log/*.log",
                 std::chrono::seconds(10));
  return r.out;
}

}  // namespace strun::testing
