// strun/environment.h: the process environment as a value.
//
// Every component reads its environment once, as an EnvMap snapshot, and passes it down, so that
// code that reads variables (SLURM_*, PMIX_*, STRUN_*, an EDF's ${VAR}s) is tested with a map
// instead of the real environment. Header-only; Slurm-specific parsing stays in slurm/.
#pragma once

#include <cstring>
#include <map>
#include <optional>
#include <string>

extern "C" {
extern char** environ;  // POSIX
}

namespace strun {

// Variables by name. std::map: iteration (and so rendering, env arrays for exec) is sorted.
using EnvMap = std::map<std::string, std::string>;

// A snapshot of `environ`. Entries without '=' are skipped (getenv cannot see them either); of a
// name defined twice the first definition wins, as with getenv().
inline EnvMap ProcessEnvironment() {
  EnvMap vars;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const char* eq = std::strchr(*entry, '=');
    if (eq == nullptr) continue;
    vars.emplace(std::string(*entry, static_cast<size_t>(eq - *entry)), std::string(eq + 1));
  }
  return vars;
}

// A read-only view of an EnvMap with optional-returning lookups.
class Environment {
 public:
  // The current process environment (ProcessEnvironment()).
  static Environment FromProcess() { return Environment(ProcessEnvironment()); }
  // A fixed set of variables, for tests.
  explicit Environment(EnvMap vars) : vars_(std::move(vars)) {}
  Environment() = default;

  std::optional<std::string> Get(const std::string& name) const {
    auto it = vars_.find(name);
    if (it == vars_.end()) return std::nullopt;
    return it->second;
  }
  bool Has(const std::string& name) const { return vars_.count(name) != 0; }
  void Set(const std::string& name, std::string value) { vars_[name] = std::move(value); }
  void Unset(const std::string& name) { vars_.erase(name); }
  const EnvMap& vars() const { return vars_; }

 private:
  EnvMap vars_;
};

}  // namespace strun
