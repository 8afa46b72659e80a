// strun: a torchrun-compatible, Slurm-native launcher. See include/strun/launcher/*.h.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "strun/launcher/agent.h"
#include "strun/launcher/options.h"
#include "strun/launcher/plan.h"
#include "strun/slurm/environment.h"
#include "strun/slurm/node_address.h"
#include "strun/slurm/topology.h"

extern char** environ;

namespace {

std::map<std::string, std::string> ProcessEnv() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq) env.emplace(std::string(*e, size_t(eq - *e)), std::string(eq + 1));
  }
  return env;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace strun;
  using namespace strun::launcher;
  const std::vector<std::string> args(argv + 1, argv + argc);
  const auto env = ProcessEnv();
  auto options = ParseCommandLine(args, env);
  if (!options) {
    std::fprintf(stderr, "strun: error: %s\n(see strun --help)\n", options.error().message.c_str());
    return 2;
  }
  if (options->help) {
    std::fputs(UsageText().c_str(), stdout);
    return 0;
  }
  for (const auto& w : options->warnings) std::fprintf(stderr, "strun: warning: %s\n", w.c_str());

  PlanInputs in;
  in.options = &*options;
  in.env = env;
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  in.hostname = host;
  // A task of an srun step (the batch script itself is not one: it has no SLURM_STEP_ID).
  // STRUN_IGNORE_SLURM=1 makes strun behave as without Slurm.
  const bool ignore_slurm = env.count("STRUN_IGNORE_SLURM") && env.at("STRUN_IGNORE_SLURM") != "0";
  const Environment slurm_env(env);
  if (!ignore_slurm && slurm::InSlurmStep(slurm_env) && (env.count("SLURM_STEP_ID") || env.count("SLURM_STEPID"))) {
    auto topology = slurm::TopologyFromSlurmEnv(slurm_env);
    if (!topology) {
      std::fprintf(stderr, "strun: error: %s\n", topology.error().message.c_str());
      return 1;
    }
    in.topology = std::move(*topology);
    in.node_address = [](const std::string& node) { return slurm::NodeAddress(node); };
  }
  std::vector<std::string> warnings;
  auto plan = MakeLaunchPlan(in, &warnings);
  if (!plan) {
    std::fprintf(stderr, "strun: error: %s\n", plan.error().message.c_str());
    return 1;
  }
  for (const auto& w : warnings) std::fprintf(stderr, "strun: warning: %s\n", w.c_str());
  return RunAgent(*options, *plan, env);
}
