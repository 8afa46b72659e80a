// strun: a torchrun-compatible, Slurm-native launcher. See include/strun/launcher/*.h.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "strun/environment.h"
#include "strun/launcher/agent.h"
#include "strun/launcher/options.h"
#include "strun/launcher/plan.h"
#include "strun/launcher/pmix_bootstrap.h"
#include "strun/launcher/process.h"
#include "strun/slurm/node_address.h"
#include "strun/slurm/pmix.h"
#include "strun/slurm/topology.h"
#ifdef STRUN_HAVE_EDF
#include "strun/edf/launch.h"
#endif

namespace {

class PmixExchange : public strun::launcher::KeyValueExchange {
 public:
  explicit PmixExchange(strun::slurm::PmixSession& s) : s_(s) {}
  strun::Status Put(const std::string& key, const std::string& value) override {
    return s_.Put(key, value);
  }
  strun::Status Fence() override { return s_.Fence(); }
  strun::Result<std::string> Get(int rank, const std::string& key) override {
    return s_.Get(rank, key);
  }

 private:
  strun::slurm::PmixSession& s_;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace strun;
  using namespace strun::launcher;
  RaiseFdLimit();  // connections must not starve a group restart of pipes (process.h)
  const std::vector<std::string> args(argv + 1, argv + argc);
  const EnvMap env = ProcessEnvironment();
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
  const bool slurm_step =
      slurm::InSlurmStep(slurm_env) && (env.count("SLURM_STEP_ID") || env.count("SLURM_STEPID"));
  std::unique_ptr<slurm::PmixSession> pmix;
  std::optional<Error> early_error;  // under PMIx reported after the exchange, so no task waits
  if (!ignore_slurm && slurm::InPmixStep(slurm_env)) {
    // srun --mpi=pmix: the topology from PMIx, checked against SLURM_*.
    auto session = slurm::PmixSession::Create();
    if (!session) {
      std::fprintf(stderr, "strun: error: %s\n", session.error().message.c_str());
      return 1;
    }
    pmix = std::move(*session);
    auto topology = pmix->Topology(slurm_env);
    if (!topology) {
      std::fprintf(stderr, "strun: error: PMIx topology: %s\n", topology.error().message.c_str());
      return 1;
    }
    if (slurm_step) {
      auto from_slurm = slurm::TopologyFromSlurmEnv(slurm_env);
      if (!from_slurm)
        early_error = from_slurm.error();
      else if (auto st = CheckPmixAgainstSlurm(*topology, *from_slurm); !st)
        early_error = st.error();
    }
    in.topology = std::move(*topology);
    in.node_address = [](const std::string& node) { return slurm::NodeAddress(node); };
    in.master_addr_from_rank0 = true;
  } else if (!ignore_slurm && slurm_step) {
    auto topology = slurm::TopologyFromSlurmEnv(slurm_env);
    if (!topology) {
      std::fprintf(stderr, "strun: error: %s\n", topology.error().message.c_str());
      return 1;
    }
    in.topology = std::move(*topology);
    in.node_address = [](const std::string& node) { return slurm::NodeAddress(node); };
  }
  std::vector<std::string> warnings;
  bool usage_error = false;  // a flag contradicts itself or the step: exit 2 (see --help)
  Result<LaunchPlan> plan =
      early_error ? Result<LaunchPlan>(*early_error) : MakeLaunchPlan(in, &warnings, &usage_error);
  if (pmix) {
    PmixExchange exchange(*pmix);
    Status st = PmixBootstrap(exchange, in.topology->rank, &plan);
    // A last fence, so that no task finalizes PMIx while another still reads from it.
    if (st) st = pmix->Fence();
    pmix.reset();
    if (!st) {
      std::fprintf(stderr, "strun: error: %s\n", st.error().message.c_str());
      return 1;
    }
  }
  if (!plan) {
    std::fprintf(stderr, "strun: error: %s\n%s", plan.error().message.c_str(),
                 usage_error ? "(see strun --help)\n" : "");
    return usage_error ? 2 : 1;
  }
  for (const auto& w : warnings) std::fprintf(stderr, "strun: warning: %s\n", w.c_str());
  if (!options->environment) return RunAgent(*options, *plan, env);
#ifdef STRUN_HAVE_EDF
  // strun --environment: one container for this agent's workers, entered by each worker child.
  std::vector<std::string> edf_warnings;
  auto container = edf::PrepareEnvironment(*options->environment, &edf_warnings);
  for (const auto& w : edf_warnings) std::fprintf(stderr, "strun: warning: %s\n", w.c_str());
  if (!container) {
    std::fprintf(stderr, "strun: error: --environment=%s: %s\n", options->environment->c_str(),
                 container.error().message.c_str());
    return 1;
  }
  if (!*container) return RunAgent(*options, *plan, env);  // already inside an EDF container
  const edf::Container& c = **container;
  WorkerWrapper wrapper;
  wrapper.environment = [&c](const std::map<std::string, std::string>& e) {
    return c.TaskEnvironment(e);
  };
  wrapper.enter = [&c]() { return c.Enter(); };
  int code = RunAgent(*options, *plan, env, &wrapper);
  if (auto st = (*container)->Destroy(); !st)
    std::fprintf(stderr, "strun: warning: removing the container: %s\n",
                 st.error().message.c_str());
  return code;
#else
  std::fprintf(stderr,
               "strun: error: --environment=%s: this strun was built without EDF support "
               "(STRUN_WITH_EDF=OFF); "
               "rebuild with -DSTRUN_WITH_EDF=ON, or use srun --environment where strun's SPANK "
               "plugin is installed\n",
               options->environment->c_str());
  return 1;
#endif
}
