// strun/slurm/environment.h: a read-only view of process environment variables, so that code
// reading SLURM_* / PMIX_* / PET_* can be tested with a map instead of the real environment.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace strun {

class Environment {
 public:
  // The current process environment (a snapshot of `environ`).
  static Environment FromProcess();
  // A fixed set of variables, for tests.
  explicit Environment(std::map<std::string, std::string> vars) : vars_(std::move(vars)) {}
  Environment() = default;

  std::optional<std::string> Get(const std::string& name) const;
  bool Has(const std::string& name) const { return vars_.count(name) != 0; }
  void Set(const std::string& name, std::string value) { vars_[name] = std::move(value); }
  void Unset(const std::string& name) { vars_.erase(name); }
  const std::map<std::string, std::string>& vars() const { return vars_; }

 private:
  std::map<std::string, std::string> vars_;
};

}  // namespace strun
