// strun/launcher/coord_service.h: libstrun_coord, the coordination service of one job's agents.
//
// The library strund and the strun agents share: the protocol's typed messages
// (coord_protocol.h), the state machine GroupState, the authenticated channel, the service that
// hosts GroupState (CoordinationServer), the client's connect, job secrets and the key they derive
// (crypto.h). No Slurm, no agent: strund links it without the rest of the launcher.
//
// GroupState, a pure state machine (no I/O):
//   agents --ready(attempt)-->   all ready: --start(attempt, restart_count, MASTER_ADDR,
//   MASTER_PORT) agents --failed(failures)--> first failure of an attempt: --stop(attempt)--> every
//   agent stops agents --stopped(attempt)--> all stopped: restarts left? --start(attempt+1) :
//   --exit(code, root cause) agents --succeeded-->        all succeeded: --exit(0) agent
//   --aborted(signal)-->   --exit(128+signal) (a termination signal reached one agent) connection
//   lost -->          --exit(1) (an agent died; strund, not strun, replaces nodes)
// So the agents agree on the master port (picked for every attempt), start together, stop together
// (no replacement starts while an old worker of the group still runs anywhere) and restart
// together; every agent exits with the same code and prints the same root cause.
//
// Recovery policy (RestartPolicy): a failed attempt is restarted while restarts are left. The
// first restart after progress starts at once; each further one without a new step in between
// waits backoff_initial_s, doubling up to backoff_max_s (the delay travels in "start" as
// delay_s and every agent waits it before spawning). When workers report progress (progress.h),
// a failure at the same high-water step as the previous failure, with no step beyond it done in
// between, counts as a repeat; max_same_step_failures failures at one step stop the job.
//
// Authentication: every connection proves knowledge of the job key
//   key = HMAC-SHA256(secret, "strun-coordination-v1|" + run key)
// with a challenge-response on fresh random nonces from both sides (so the server also proves
// itself to the agent), then every message carries HMAC-SHA256(session key, direction, sequence
// number, payload), session key = HMAC(key, "session"|nonces). Nothing secret is ever sent.
// Frames are at most 16 MiB; a frame that fails authentication or is not JSON ends the
// connection; a JSON message of the wrong shape is ignored (coord_protocol.h). Another user's
// process can connect to the port but neither join nor command the group, nor exhaust the host's
// descriptors: a connection that has not authenticated is closed after 5 s, at most 256 are open
// at a time (32 from one address), and none is accepted while fewer than an eighth of the
// descriptor limit (at least 64) is free, so that a group restart always finds its pipes. Such a
// flood can still delay agents joining (they retry until the join timeout).
//
// Events: the service reports what happens (coord_protocol.h's events) to an optional callback
// (strund writes them to its event log).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "strun/environment.h"
#include "strun/launcher/coord_protocol.h"
#include "strun/launcher/failure.h"
#include "strun/result.h"

namespace strun::launcher {

using Json = nlohmann::json;

// A message for one agent (target >= 0) or for all (target == -1).
struct Outgoing {
  Outgoing(int to, coord::ServiceMessage m)
      : target(to), body(std::move(m)), message(coord::ToJson(body)) {}
  int target = -1;
  coord::ServiceMessage body;
  Json message;  // ToJson(body): what goes on the wire
};

struct RestartPolicy {
  int max_restarts = 0;
  double backoff_initial_s = 1.0;
  double backoff_max_s = 60.0;
  int max_same_step_failures = 2;
};

// Receives the service's events. Called from the service's thread.
using EventSink = std::function<void(const coord::Event& event)>;

class GroupState {
 public:
  // pick_port: the choice of MASTER_PORT for an attempt.
  GroupState(int num_agents, RestartPolicy policy, std::string master_addr,
             std::function<int()> pick_port);

  // A message from agent `agent`; returns what to send.
  std::vector<Outgoing> OnMessage(int agent, const coord::AgentMessage& message);
  // The same from its JSON form (untrusted: a message that does not parse is ignored).
  std::vector<Outgoing> OnMessage(int agent, const Json& message);
  // The connection to `agent` was lost.
  std::vector<Outgoing> OnAgentLost(int agent);
  // Not every agent arrived in time.
  std::vector<Outgoing> OnJoinTimeout();

  bool finished() const { return phase_ == Phase::kFinished; }
  int attempt() const { return attempt_; }
  bool all_joined() const { return joined_ == num_agents_; }
  // The exit message once finished (nullopt / null before).
  const std::optional<coord::Exit>& exit() const { return outcome_; }
  Json outcome() const {
    return outcome_ ? coord::ToJson(coord::ServiceMessage(*outcome_)) : Json();
  }
  // Events since the last call, oldest first; TakeEvents gives them in their JSON form.
  std::vector<coord::Event> TakeTypedEvents();
  std::vector<Json> TakeEvents();

 private:
  enum class Phase { kWaiting, kRunning, kStopping, kFinished };
  std::vector<Outgoing> OnReady(int agent, const coord::Ready& m);
  std::vector<Outgoing> OnProgress(int agent, const coord::Progress& m);
  std::vector<Outgoing> OnFailedOrStopped(int agent, int attempt,
                                          const std::vector<WorkerFailure>& failures, bool failed);
  std::vector<Outgoing> OnSucceeded(int agent, const coord::Succeeded& m);
  std::vector<Outgoing> Start();
  std::vector<Outgoing> Exit(int code, const std::string& reason,
                             const std::optional<WorkerFailure>& root);
  std::vector<Outgoing> MaybeFinishStop();

  void Emit(coord::EventBody event);

  int num_agents_;
  RestartPolicy policy_;
  std::string master_addr_;
  std::function<int()> pick_port_;
  Phase phase_ = Phase::kWaiting;
  int attempt_ = 0;
  int restarts_used_ = 0;
  int joined_ = 0;
  std::vector<bool> ready_, succeeded_, stopped_, seen_, preempted_;
  std::vector<std::string> nodes_;
  std::vector<WorkerFailure> failures_;  // of the current attempt
  std::string stop_reason_;
  // Progress (progress.h): the highest step any worker reported, whether any did, the high-water
  // step at the last failure and how many failures in a row happened there.
  long long high_water_ = -1;
  bool progress_seen_ = false;
  long long failure_step_ = -2;
  int same_step_failures_ = 0;
  int failures_without_progress_ = 0;
  int resumed_attempt_ = 0;
  double next_delay_s_ = 0;
  std::vector<coord::LostAgent> lost_agents_;
  std::optional<coord::Exit> outcome_;
  std::vector<coord::Event> events_;
};

// A fresh job secret: 32 random bytes (getrandom) as 64 hex digits. What strund hands its agents,
// what agent 0 hands out through PMIx, and what the per-user secret file holds.
Result<std::string> NewJobSecret();

// HMAC-SHA256(secret, "strun-coordination-v1|" + run_key), 32 raw bytes: the key every agent and
// the service derive.
std::string DeriveCoordinationKey(const std::string& secret, const std::string& run_key);

// The job secret, in order: $STRUN_JOB_SECRET, else `agreed` (e.g. handed out through PMIx), else
// the per-user secret file $STRUN_SECRET_FILE or ~/.strun/secret (32 random bytes, created 0600 on
// first use; must be owned by the user and not readable by group or others). No source is an
// error that says how to provide one.
Result<std::string> JobSecret(const EnvMap& env, const std::string& agreed);

// The service's candidate ports: $STRUN_COORD_PORT, else `fixed`, else 16 ports in [20000, 32000)
// derived from the key (two jobs sharing a node pick different ports; others cannot predict them).
std::vector<int> CandidatePorts(const std::string& key, const EnvMap& env,
                                std::optional<int> fixed);

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

// Hosts GroupState for the job in a thread (of agent 0's strun, or of strund).
class CoordinationServer {
 public:
  // ports: candidates, the first free one is bound (0: any free port).
  static Result<std::unique_ptr<CoordinationServer>> Start(
      const std::string& key, const std::vector<int>& ports, int num_agents, RestartPolicy policy,
      const std::string& master_addr, std::function<int()> pick_port, double join_timeout_s,
      EventSink on_event = {});
  ~CoordinationServer();
  int port() const { return port_; }
  // Waits (bounded) until the exit message went out to every agent still connected.
  void WaitFinished(double timeout_s);
  bool finished() const { return finished_; }
  // The group's exit message once the service finished (nullopt before, or when it ended without
  // one: e.g. never joined). Safe to call from any thread after finished() is true.
  std::optional<coord::Exit> exit() const;
  Json outcome() const;  // its JSON form, null when none

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
  EventSink on_event_;
  std::optional<coord::Exit> outcome_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
};

// Connects agent `agent_index` to the service at host (trying `ports` in turn until one
// authenticates), within `timeout_s`.
Result<std::unique_ptr<Channel>> ConnectToCoordinator(const std::string& host,
                                                      const std::vector<int>& ports,
                                                      const std::string& key, int agent_index,
                                                      double timeout_s);

// A free TCP port on this machine (bind to port 0).
Result<int> FreePort();

}  // namespace strun::launcher
