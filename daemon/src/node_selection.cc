// Node selection for a launch (node_selection.h).
#include "strun/daemon/node_selection.h"

#include <algorithm>

namespace strun::daemon {

Result<std::vector<std::string>> SelectNodes(const std::vector<std::string>& allocation,
                                             const std::map<std::string, std::string>& unusable,
                                             const std::vector<std::string>& previous, int count) {
  std::vector<std::string> usable;
  for (const auto& n : allocation)
    if (!unusable.count(n) && std::find(usable.begin(), usable.end(), n) == usable.end())
      usable.push_back(n);
  if (count < 1) return MakeError("a launch needs at least one node, not " + std::to_string(count));
  if (int(usable.size()) < count) {
    std::string why;
    for (const auto& n : allocation) {
      auto it = unusable.find(n);
      if (it == unusable.end() || why.find(n + ":") != std::string::npos) continue;
      why += (why.empty() ? "" : ", ") + n + ": " + it->second;
    }
    return MakeError("only " + std::to_string(usable.size()) + " of the " + std::to_string(count) +
                     " node" + (count == 1 ? "" : "s") + " needed " +
                     (usable.size() == 1 ? "is" : "are") + " usable in the allocation of " +
                     std::to_string(allocation.size()) + (why.empty() ? "" : " (" + why + ")"));
  }
  std::vector<std::string> chosen;
  for (const auto& n : previous)
    if (int(chosen.size()) < count && std::find(usable.begin(), usable.end(), n) != usable.end() &&
        std::find(chosen.begin(), chosen.end(), n) == chosen.end())
      chosen.push_back(n);
  for (const auto& n : usable)
    if (int(chosen.size()) < count && std::find(chosen.begin(), chosen.end(), n) == chosen.end())
      chosen.push_back(n);
  // Allocation order: the order Slurm gives the step's tasks.
  std::vector<std::string> ordered;
  for (const auto& n : usable)
    if (std::find(chosen.begin(), chosen.end(), n) != chosen.end()) ordered.push_back(n);
  return ordered;
}

}  // namespace strun::daemon
