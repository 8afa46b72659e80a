// strun/launcher/coordination.h: how the agents (one strun per node, or per task) of one job act
// as one group.
//
// Design
// ------
// Agent 0 (the strun on the step's first node that also runs global rank 0) hosts a small TCP
// service; every agent, agent 0 included, connects to it. The service runs GroupState, a pure
// state machine:
//
//   agents --ready(attempt)-->   all ready: --start(attempt, restart_count, MASTER_ADDR, MASTER_PORT)
//   agents --failed(failures)--> first failure of an attempt: --stop(attempt)--> every agent stops
//   agents --stopped(attempt)--> all stopped: restarts left? --start(attempt+1) : --exit(code, root cause)
//   agents --succeeded-->        all succeeded: --exit(0)
//   agent --aborted(signal)-->   --exit(128+signal) (a termination signal reached one agent)
//   connection lost -->          --exit(1) (an agent died; strund, not strun, replaces nodes)
// So the agents agree on the master port (agent 0 picks a free one for every attempt, or uses
// --master-port), start together, stop together (no replacement starts while an old worker of the
// group still runs anywhere) and restart together; every agent exits with the same code and prints
// the same root cause.
//
// Authentication: every connection proves knowledge of a per-job key
//   key = HMAC-SHA256(secret, "strun-coordination-v1|" + run key (Slurm job.step, or run id))
// with a challenge-response on fresh random nonces from both sides (so the server also proves
// itself to the agent), then every message carries HMAC-SHA256(session key, direction, sequence
// number, payload), session key = HMAC(key, "session"|nonces). Nothing secret is ever sent. The
// secret is, in order: $STRUN_JOB_SECRET, else under `srun --mpi=pmix` a random one agent 0 hands
// out through PMIx (LaunchPlan::job_secret, pmix_bootstrap.h), else (strund or the batch script sets it; a process's
// environment is readable only by its user), else the per-user secret file $STRUN_SECRET_FILE or
// ~/.strun/secret (32 random bytes, created 0600 on first use; must be owned by the user and not
// readable by group or others; home directories are shared across a cluster's nodes). Another
// user's process can connect to the port but neither join nor command the group.
//
// Port: $STRUN_COORD_PORT, or the port of --rdzv-endpoint, else a list of 16 candidates in
// [20000, 32000) derived from the key (so two jobs sharing a node pick different ports, and other
// users cannot predict them); agent 0 binds the first free one and the others try them in turn
// until one authenticates.
// A group of a single agent uses GroupState in-process, without network or secret.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "strun/launcher/failure.h"
#include "strun/launcher/plan.h"
#include "strun/result.h"

namespace strun::launcher {

using Json = nlohmann::json;

// A message for one agent (target >= 0) or for all (target == -1).
struct Outgoing {
  int target = -1;
  Json message;
};

class GroupState {
 public:
  // pick_port: agent 0's choice of MASTER_PORT for an attempt.
  GroupState(int num_agents, int max_restarts, std::string master_addr, std::function<int()> pick_port);

  // A message from agent `agent`; returns what to send.
  std::vector<Outgoing> OnMessage(int agent, const Json& message);
  // The connection to `agent` was lost.
  std::vector<Outgoing> OnAgentLost(int agent);
  // Not every agent arrived in time.
  std::vector<Outgoing> OnJoinTimeout();

  bool finished() const { return phase_ == Phase::kFinished; }
  int attempt() const { return attempt_; }
  bool all_joined() const { return joined_ == num_agents_; }

 private:
  enum class Phase { kWaiting, kRunning, kStopping, kFinished };
  std::vector<Outgoing> Start();
  std::vector<Outgoing> Exit(int code, const std::string& reason, const std::optional<WorkerFailure>& root);
  std::vector<Outgoing> MaybeFinishStop();

  int num_agents_;
  int max_restarts_;
  std::string master_addr_;
  std::function<int()> pick_port_;
  Phase phase_ = Phase::kWaiting;
  int attempt_ = 0;
  int restarts_used_ = 0;
  int joined_ = 0;
  std::vector<bool> ready_, succeeded_, stopped_, seen_;
  std::vector<WorkerFailure> failures_;  // of the current attempt
  std::string stop_reason_;
};

// The job key (see above). Empty secret sources are an error that says how to provide one.
Result<std::string> CoordinationKey(const LaunchPlan& plan, const std::map<std::string, std::string>& env);
std::vector<int> CandidatePorts(const std::string& key, const std::map<std::string, std::string>& env,
                                const LaunchPlan& plan);

// An authenticated, framed connection. Blocking writes, non-blocking reads into a queue.
class Channel {
 public:
  Channel(int fd, std::string session_key, bool is_server);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  int fd() const { return fd_; }
  Status Send(const Json& message);
  // Reads what is available. Returns false when the peer closed or sent a bad frame.
  bool ReadAvailable(std::string* why);
  std::optional<Json> Next();

 private:
  int fd_;
  std::string key_;
  bool is_server_;
  uint64_t send_seq_ = 0, recv_seq_ = 0;
  std::string in_;
  std::vector<Json> queue_;
};

// Hosts GroupState for the job in a thread of agent 0's strun.
class CoordinationServer {
 public:
  static Result<std::unique_ptr<CoordinationServer>> Start(const std::string& key, const std::vector<int>& ports,
                                                           int num_agents, int max_restarts,
                                                           const std::string& master_addr,
                                                           std::function<int()> pick_port, double join_timeout_s);
  ~CoordinationServer();
  int port() const { return port_; }
  // Waits (bounded) until the exit message went out to every agent still connected.
  void WaitFinished(double timeout_s);

 private:
  CoordinationServer() = default;
  void Run();
  int listen_fd_ = -1;
  int wake_fd_[2] = {-1, -1};
  int port_ = 0;
  std::string key_;
  int num_agents_ = 0;
  double join_timeout_s_ = 600;
  std::unique_ptr<GroupState> state_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
};

// Connects agent `agent_index` to the service at host (trying `ports` in turn until one
// authenticates), within `timeout_s`.
Result<std::unique_ptr<Channel>> ConnectToCoordinator(const std::string& host, const std::vector<int>& ports,
                                                      const std::string& key, int agent_index, double timeout_s);

// A free TCP port on this machine (bind to port 0).
Result<int> FreePort();

}  // namespace strun::launcher
