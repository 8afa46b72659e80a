// The coordination protocol's JSON form (coord_protocol.h): the one place that knows its keys.
#include "strun/launcher/coord_protocol.h"

#include <type_traits>

// GCC 12 reports the members of a default-initialised struct moved into a std::variant inside a
// Result as "may be used uninitialized" (a known false positive of -O2 inlining through
// std::variant; every member here has an initialiser).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace strun::coord {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// The key types WorkerFailure::FromJson reads: nlohmann's value() throws on a mismatch and
// converts an out-of-range float to int with undefined behaviour (found by tests/fuzz).
bool FieldsHave(const Json& m, std::initializer_list<const char*> keys,
                bool (Json::*is_type)() const) {
  for (const char* key : keys) {
    auto it = m.find(key);
    if (it != m.end() && !((*it).*is_type)()) return false;
  }
  return true;
}

Result<WorkerFailure> ParseFailure(const Json& f, const std::string& where) {
  if (!f.is_object() ||
      !FieldsHave(f, {"node", "error_file", "error_data", "message", "kind", "evidence"},
                  &Json::is_string) ||
      !FieldsHave(f, {"rank", "local_rank", "pid", "exitcode", "step"}, &Json::is_number_integer) ||
      !FieldsHave(f, {"timestamp"}, &Json::is_number))
    return MakeError(where + ": not a worker failure");
  return WorkerFailure::FromJson(f);
}

// Reads typed fields from an object; a present key of another type is the message's error.
class Reader {
 public:
  explicit Reader(const Json& j) : j_(j) {}

  void Get(const char* key, int& out) {
    if (const Json* v = Find(key, &Json::is_number_integer, "an integer")) out = v->get<int>();
  }
  void Get(const char* key, long long& out) {
    if (const Json* v = Find(key, &Json::is_number_integer, "an integer"))
      out = v->get<long long>();
  }
  void Get(const char* key, double& out) {
    if (const Json* v = Find(key, &Json::is_number, "a number")) out = v->get<double>();
  }
  void Get(const char* key, bool& out) {
    if (const Json* v = Find(key, &Json::is_boolean, "a boolean")) out = v->get<bool>();
  }
  void Get(const char* key, std::string& out) {
    if (const Json* v = Find(key, &Json::is_string, "a string")) out = v->get<std::string>();
  }
  void Get(const char* key, std::optional<WorkerFailure>& out) {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return;
    auto f = ParseFailure(*it, key);
    if (!f) return Fail(f.error().message);
    out = std::move(*f);
  }
  void Get(const char* key, std::vector<WorkerFailure>& out) {
    const Json* v = Find(key, &Json::is_array, "an array");
    if (!v) return;
    for (const auto& e : *v) {
      auto f = ParseFailure(e, key);
      if (!f) return Fail(f.error().message);
      out.push_back(std::move(*f));
    }
  }
  void Get(const char* key, std::vector<LostAgent>& out) {
    const Json* v = Find(key, &Json::is_array, "an array");
    if (!v) return;
    for (const auto& e : *v) {
      if (!e.is_object()) return Fail(std::string(key) + ": expected objects");
      Reader r(e);
      LostAgent a;
      r.Get("agent", a.agent);
      r.Get("node", a.node);
      if (!r.error_.empty()) return Fail(std::string(key) + "." + r.error_);
      out.push_back(std::move(a));
    }
  }

  template <class T>
  Result<T> Done(T value) const {
    if (!error_.empty()) return MakeError("coordination message: " + error_);
    return value;
  }

 private:
  const Json* Find(const char* key, bool (Json::*is_type)() const, const char* what) {
    auto it = j_.find(key);
    if (it == j_.end()) return nullptr;
    if (!((*it).*is_type)()) {
      Fail(std::string(key) + ": expected " + what);
      return nullptr;
    }
    return &*it;
  }
  void Fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }

  const Json& j_;
  std::string error_;
};

Json FailuresJson(const std::vector<WorkerFailure>& failures) {
  Json out = Json::array();
  for (const auto& f : failures) out.push_back(f.ToJson());
  return out;
}

Json RootJson(const std::optional<WorkerFailure>& root) { return root ? root->ToJson() : Json(); }

Json ExitFields(const Exit& m) {
  Json lost = Json::array();
  for (const auto& a : m.lost_agents) lost.push_back({{"agent", a.agent}, {"node", a.node}});
  return {{"code", m.code},
          {"reason", m.reason},
          {"attempt", m.attempt},
          {"restart_count", m.restart_count},
          {"preempted", m.preempted},
          {"high_water_step", m.high_water_step},
          {"lost_agents", lost},
          {"root_cause", RootJson(m.root_cause)},
          {"failures", FailuresJson(m.failures)}};
}

Result<Exit> ReadExit(const Json& j) {
  Reader r(j);
  Exit m;
  r.Get("code", m.code);
  r.Get("reason", m.reason);
  r.Get("attempt", m.attempt);
  r.Get("restart_count", m.restart_count);
  r.Get("preempted", m.preempted);
  r.Get("high_water_step", m.high_water_step);
  r.Get("lost_agents", m.lost_agents);
  r.Get("root_cause", m.root_cause);
  r.Get("failures", m.failures);
  return r.Done(std::move(m));
}

// What every agent message is checked for before its type is looked at (also keys its type does
// not use), so that a message from another strun version or a buggy agent is ignored as a whole.
bool AgentFieldsWellTyped(const Json& m) {
  if (!FieldsHave(m, {"type", "node", "reason"}, &Json::is_string) ||
      !FieldsHave(m, {"attempt", "step", "code"}, &Json::is_number_integer) ||
      !FieldsHave(m, {"preempted"}, &Json::is_boolean))
    return false;
  auto failures = m.find("failures");
  if (failures == m.end() || !failures->is_array()) return true;
  for (const auto& f : *failures)
    if (!ParseFailure(f, "failures")) return false;
  return true;
}

// "failures" that is not an array is ignored (older agents), unlike the other keys.
std::vector<WorkerFailure> AgentFailures(const Json& m) {
  std::vector<WorkerFailure> out;
  auto it = m.find("failures");
  if (it == m.end() || !it->is_array()) return out;
  for (const auto& f : *it) out.push_back(WorkerFailure::FromJson(f));
  return out;
}

}  // namespace

const char* TypeName(const AgentMessage& m) {
  return std::visit(
      Overloaded{[](const Ready&) { return "ready"; }, [](const Progress&) { return "progress"; },
                 [](const Failed&) { return "failed"; }, [](const Stopped&) { return "stopped"; },
                 [](const Succeeded&) { return "succeeded"; },
                 [](const Aborted&) { return "aborted"; },
                 [](const UnknownMessage&) { return "unknown"; }},
      m);
}

const char* TypeName(const ServiceMessage& m) {
  return std::visit(
      Overloaded{[](const Start&) { return "start"; }, [](const Stop&) { return "stop"; },
                 [](const Exit&) { return "exit"; }},
      m);
}

const char* EventName(const EventBody& e) {
  return std::visit(
      Overloaded{
          [](const AgentJoined&) { return "agent_joined"; },
          [](const Started&) { return "started"; }, [](const ProgressEvent&) { return "progress"; },
          [](const Resumed&) { return "resumed"; }, [](const FailureEvent&) { return "failure"; },
          [](const RestartEvent&) { return "restart"; },
          [](const AgentLost&) { return "agent_lost"; }, [](const Exit&) { return "exit"; }},
      e);
}

Json ToJson(const AgentMessage& message) {
  Json j = std::visit(
      Overloaded{[](const Ready& m) -> Json {
                   return {{"attempt", m.attempt}, {"node", m.node}};
                 },
                 [](const Progress& m) -> Json {
                   return {{"attempt", m.attempt}, {"step", m.step}, {"preempted", m.preempted}};
                 },
                 [](const Failed& m) -> Json {
                   return {{"attempt", m.attempt}, {"failures", FailuresJson(m.failures)}};
                 },
                 [](const Stopped& m) -> Json {
                   Json j = {{"attempt", m.attempt}};
                   if (!m.failures.empty()) j["failures"] = FailuresJson(m.failures);
                   return j;
                 },
                 [](const Succeeded& m) -> Json {
                   return {{"attempt", m.attempt}, {"preempted", m.preempted}};
                 },
                 [](const Aborted& m) -> Json {
                   return {{"code", m.code}, {"reason", m.reason}};
                 },
                 [](const UnknownMessage&) -> Json { return Json::object(); }},
      message);
  j["type"] = std::holds_alternative<UnknownMessage>(message)
                  ? std::get<UnknownMessage>(message).type
                  : std::string(TypeName(message));
  return j;
}

Json ToJson(const ServiceMessage& message) {
  Json j = std::visit(Overloaded{[](const Start& m) -> Json {
                                   return {{"attempt", m.attempt},
                                           {"restart_count", m.restart_count},
                                           {"master_addr", m.master_addr},
                                           {"master_port", m.master_port},
                                           {"delay_s", m.delay_s}};
                                 },
                                 [](const Stop& m) -> Json {
                                   return {{"attempt", m.attempt}, {"reason", m.reason}};
                                 },
                                 [](const Exit& m) -> Json { return ExitFields(m); }},
                      message);
  j["type"] = TypeName(message);
  return j;
}

Json ToJson(const Event& event) {
  Json j = std::visit(
      Overloaded{
          [](const AgentJoined& e) -> Json {
            return {{"agent", e.agent}, {"node", e.node}};
          },
          [](const Started& e) -> Json {
            return {
                {"attempt", e.attempt}, {"restart_count", e.restart_count}, {"delay_s", e.delay_s}};
          },
          [](const ProgressEvent& e) -> Json {
            return {{"step", e.step}, {"agent", e.agent}, {"preempted", e.preempted}};
          },
          [](const Resumed& e) -> Json {
            return {{"attempt", e.attempt}, {"step", e.step}};
          },
          [](const FailureEvent& e) -> Json {
            return {{"attempt", e.attempt},
                    {"kind", e.kind},
                    {"evidence", e.evidence},
                    {"reason", e.reason},
                    {"step", e.step},
                    {"root_cause", RootJson(e.root_cause)},
                    {"failures", FailuresJson(e.failures)}};
          },
          [](const RestartEvent& e) -> Json {
            return {
                {"restart_count", e.restart_count}, {"delay_s", e.delay_s}, {"reason", e.reason}};
          },
          [](const AgentLost& e) -> Json {
            return {
                {"agent", e.agent}, {"node", e.node}, {"kind", e.kind}, {"evidence", e.evidence}};
          },
          [](const Exit& e) -> Json { return ExitFields(e); }},
      event.body);
  j["event"] = EventName(event.body);
  j["time"] = event.time;
  return j;
}

Result<AgentMessage> ParseAgentMessage(const Json& j) {
  if (!j.is_object()) return MakeError("coordination message: not a JSON object");
  if (!AgentFieldsWellTyped(j)) return MakeError("coordination message: a key has the wrong type");
  const std::string type = j.value("type", "");
  Reader r(j);
  if (type == "ready") {
    Ready m;
    r.Get("attempt", m.attempt);
    r.Get("node", m.node);
    return r.Done<AgentMessage>(std::move(m));
  }
  if (type == "progress") {
    Progress m;
    r.Get("attempt", m.attempt);
    r.Get("step", m.step);
    r.Get("preempted", m.preempted);
    return r.Done<AgentMessage>(m);
  }
  if (type == "failed" || type == "stopped") {
    int attempt = -1;
    r.Get("attempt", attempt);
    if (type == "failed") return r.Done<AgentMessage>(Failed{attempt, AgentFailures(j)});
    return r.Done<AgentMessage>(Stopped{attempt, AgentFailures(j)});
  }
  if (type == "succeeded") {
    Succeeded m;
    r.Get("attempt", m.attempt);
    r.Get("preempted", m.preempted);
    return r.Done<AgentMessage>(m);
  }
  if (type == "aborted") {
    Aborted m;
    r.Get("code", m.code);
    r.Get("reason", m.reason);
    return r.Done<AgentMessage>(std::move(m));
  }
  return AgentMessage(UnknownMessage{type});
}

Result<ServiceMessage> ParseServiceMessage(const Json& j) {
  if (!j.is_object()) return MakeError("coordination message: not a JSON object");
  Reader r(j);
  std::string type;
  r.Get("type", type);
  if (type == "start") {
    Start m;
    r.Get("attempt", m.attempt);
    r.Get("restart_count", m.restart_count);
    r.Get("master_addr", m.master_addr);
    r.Get("master_port", m.master_port);
    r.Get("delay_s", m.delay_s);
    return r.Done<ServiceMessage>(std::move(m));
  }
  if (type == "stop") {
    Stop m;
    r.Get("attempt", m.attempt);
    r.Get("reason", m.reason);
    return r.Done<ServiceMessage>(std::move(m));
  }
  if (type == "exit") {
    auto m = ReadExit(j);
    if (!m) return m.error();
    return r.Done<ServiceMessage>(std::move(*m));
  }
  return MakeError("coordination message: unknown type '" + type.substr(0, 64) + "'");
}

Result<Event> ParseEvent(const Json& j) {
  if (!j.is_object()) return MakeError("coordination event: not a JSON object");
  Reader r(j);
  Event e;
  std::string name;
  r.Get("event", name);
  r.Get("time", e.time);
  if (name == "agent_joined") {
    AgentJoined b;
    r.Get("agent", b.agent);
    r.Get("node", b.node);
    e.body = std::move(b);
  } else if (name == "started") {
    Started b;
    r.Get("attempt", b.attempt);
    r.Get("restart_count", b.restart_count);
    r.Get("delay_s", b.delay_s);
    e.body = b;
  } else if (name == "progress") {
    ProgressEvent b;
    r.Get("step", b.step);
    r.Get("agent", b.agent);
    r.Get("preempted", b.preempted);
    e.body = b;
  } else if (name == "resumed") {
    Resumed b;
    r.Get("attempt", b.attempt);
    r.Get("step", b.step);
    e.body = b;
  } else if (name == "failure") {
    FailureEvent b;
    r.Get("attempt", b.attempt);
    r.Get("kind", b.kind);
    r.Get("evidence", b.evidence);
    r.Get("reason", b.reason);
    r.Get("step", b.step);
    r.Get("root_cause", b.root_cause);
    r.Get("failures", b.failures);
    e.body = std::move(b);
  } else if (name == "restart") {
    RestartEvent b;
    r.Get("restart_count", b.restart_count);
    r.Get("delay_s", b.delay_s);
    r.Get("reason", b.reason);
    e.body = std::move(b);
  } else if (name == "agent_lost") {
    AgentLost b;
    r.Get("agent", b.agent);
    r.Get("node", b.node);
    r.Get("kind", b.kind);
    r.Get("evidence", b.evidence);
    e.body = std::move(b);
  } else if (name == "exit") {
    auto b = ReadExit(j);
    if (!b) return b.error();
    e.body = std::move(*b);
  } else {
    return MakeError("coordination event: unknown event '" + name.substr(0, 64) + "'");
  }
  auto done = r.Done(0);
  if (!done) return done.error();
  return e;
}

}  // namespace strun::coord
