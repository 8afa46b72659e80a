// strun/launcher/coord_protocol.h: the coordination protocol (libstrun_coord) as typed messages.
//
// Three parties speak it: the strun agents (one per node or task), the coordination service that
// runs GroupState (hosted by agent 0, or by strund for a whole job), and the service's observer
// (strund's event log). On the wire every message is one JSON object in an authenticated frame
// (coordination.h); this header is the only place that knows its keys. Every key is optional on
// input: an absent key takes the default written below; a present key of the wrong type makes the
// whole message invalid (Parse* returns an Error, never throws).
//
// Agent -> service ("type" names the message):
//   ready     {attempt, node}                 joined, ready for `attempt` (node: its Slurm node)
//   progress  {attempt, step, preempted}      a new high-water training step (progress.h)
//   failed    {attempt, failures: [failure]}  a worker of `attempt` failed (WorkerFailure JSON)
//   stopped   {attempt, failures}             every local worker of `attempt` has stopped
//   succeeded {attempt, preempted}            every local worker exited 0
//   aborted   {code, reason}                  a termination signal reached the agent
// Service -> agents:
//   start     {attempt, restart_count, master_addr, master_port, delay_s}
//   stop      {attempt, reason}
//   exit      {code, reason, attempt, restart_count, preempted, high_water_step,
//              lost_agents: [{agent, node}], root_cause: failure | null, failures: [failure]}
// Events (the service -> its EventSink; {"event": name, "time": epoch s, ...}):
//   agent_joined {agent, node}
//   started      {attempt, restart_count, delay_s}
//   progress     {step, agent, preempted}      new high-water steps only; pre-emption reports too
//   resumed      {attempt, step}               the first step reported after a restart
//   failure      {attempt, kind, evidence, reason, step, root_cause, failures}   (kinds: failure.h)
//   restart      {restart_count, delay_s, reason}
//   agent_lost   {agent, node, kind: "lost_agent", evidence}
//   exit         the exit message's fields
// A message of an unknown type parses as UnknownMessage (newer peers may send more); GroupState
// ignores it.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "strun/launcher/failure.h"
#include "strun/result.h"

namespace strun::coord {

using Json = nlohmann::json;
using launcher::WorkerFailure;

// Agent -> service.
struct Ready {
  int attempt = -1;
  std::string node;
};
struct Progress {
  int attempt = -1;
  long long step = -1;
  bool preempted = false;
};
struct Failed {
  int attempt = -1;
  std::vector<WorkerFailure> failures;  // as sent, not yet classified
};
struct Stopped {
  int attempt = -1;
  std::vector<WorkerFailure> failures;
};
struct Succeeded {
  int attempt = -1;
  bool preempted = false;
};
struct Aborted {
  int code = 1;
  std::string reason = "an agent was stopped";
};
struct UnknownMessage {
  std::string type;
};
using AgentMessage =
    std::variant<Ready, Progress, Failed, Stopped, Succeeded, Aborted, UnknownMessage>;

// Service -> agents.
struct Start {
  int attempt = 0;
  int restart_count = 0;
  std::string master_addr;  // "" when absent: the agent keeps its own
  int master_port = 0;
  double delay_s = 0;  // back-off: every agent waits this long before spawning
};
struct Stop {
  int attempt = -1;
  std::string reason;
};
struct LostAgent {
  int agent = -1;
  std::string node;
};
// The group's outcome: the "exit" message, and the "exit" event.
struct Exit {
  int code = 1;
  std::string reason;
  int attempt = 0;
  int restart_count = 0;
  bool preempted = false;
  long long high_water_step = -1;
  std::vector<LostAgent> lost_agents;
  std::optional<WorkerFailure> root_cause;
  std::vector<WorkerFailure> failures;
};
using ServiceMessage = std::variant<Start, Stop, Exit>;

// Events.
struct AgentJoined {
  int agent = -1;
  std::string node;
};
struct Started {
  int attempt = 0;
  int restart_count = 0;
  double delay_s = 0;
};
struct ProgressEvent {
  long long step = -1;
  int agent = -1;
  bool preempted = false;
};
struct Resumed {
  int attempt = 0;
  long long step = -1;
};
struct FailureEvent {
  int attempt = 0;
  std::string kind;
  std::string evidence;
  std::string reason;
  long long step = -1;  // the high-water step at the failure
  std::optional<WorkerFailure> root_cause;
  std::vector<WorkerFailure> failures;
};
struct RestartEvent {
  int restart_count = 0;
  double delay_s = 0;
  std::string reason;
};
struct AgentLost {
  int agent = -1;
  std::string node;
  std::string kind = "lost_agent";
  std::string evidence;
};
using EventBody = std::variant<AgentJoined, Started, ProgressEvent, Resumed, FailureEvent,
                               RestartEvent, AgentLost, Exit>;
struct Event {
  double time = 0;  // epoch seconds
  EventBody body;
};

// The wire names: "ready", "start", ...; "agent_joined", "exit", ...
const char* TypeName(const AgentMessage& m);
const char* TypeName(const ServiceMessage& m);
const char* EventName(const EventBody& e);

Json ToJson(const AgentMessage& m);
Json ToJson(const ServiceMessage& m);
Json ToJson(const Event& e);  // {"event": name, "time": t, fields...}

// Untrusted input: an error (naming the key) for anything but an object of the shape above.
Result<AgentMessage> ParseAgentMessage(const Json& j);
Result<ServiceMessage> ParseServiceMessage(const Json& j);
Result<Event> ParseEvent(const Json& j);

}  // namespace strun::coord
