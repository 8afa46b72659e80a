#include "strun/slurm/environment.h"

#include <cstring>

extern char** environ;  // POSIX

namespace strun {

Environment Environment::FromProcess() {
  std::map<std::string, std::string> vars;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const char* eq = std::strchr(*entry, '=');
    if (eq == nullptr) continue;  // not NAME=VALUE; getenv could not see it either
    std::string name(*entry, static_cast<size_t>(eq - *entry));
    // The first definition wins, as with getenv().
    vars.emplace(std::move(name), std::string(eq + 1));
  }
  return Environment(std::move(vars));
}

std::optional<std::string> Environment::Get(const std::string& name) const {
  auto it = vars_.find(name);
  if (it == vars_.end()) return std::nullopt;
  return it->second;
}

}  // namespace strun
