// spank_strun.so: `--environment=EDF` for srun, sbatch and salloc.
//
// plugstack.conf:  required /PATH/spank_strun.so [hooks_dir=DIR] [state_dir=DIR]
// (required: Slurm ignores an optional plugin's errors, and the tasks would run outside the
// container; the strun package installs it in Slurm's PluginDir, etc/packaging/).
//
// Submit side (srun, sbatch, salloc): the EDF is found, parsed, expanded and checked as the
// submitting user, so a bad EDF fails at once with its message, before anything is launched.
// Node side (slurmstepd), for each job step that asked for an environment:
//   slurm_spank_user_init            once per node: load the EDF again with the job's environment
//                                    and submit directory, and create the container (as root; the
//                                    keeper opens every user path with the user's credentials).
//                                    A failure is reported here but not returned: Slurm would only
//                                    print "launch failed" and srun would exit 0
//   slurm_spank_task_init_privileged each task, still root: fail the task (exit 1, so srun and the
//                                    job fail) when the container could not be created; else keep
//                                    the capabilities across Slurm's setuid (PR_SET_KEEPCAPS) so
//                                    that the task can join later
//   slurm_spank_task_init            each task, now the user: join the container's mount namespace
//                                    with CAP_SYS_ADMIN/CAP_SYS_CHROOT, drop every capability,
//                                    then workdir, environment, no_new_privs. Joining only here,
//                                    after Slurm's chdir to the submit directory, keeps Slurm from
//                                    looking for that directory inside the container.
//   slurm_spank_exit                 destroy the container: no mount, FUSE daemon or process left
// The batch step itself (the sbatch script) is never containerised: the steps it starts are.
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "strun/edf/container.h"
#include "strun/edf/edf.h"
#include "strun/edf/launch.h"
#include "strun/edf/validate.h"

// Slurm's headers declare the plugin entry points without C linkage for C++.
extern "C" {
#include <slurm/slurm.h>
#include <slurm/spank.h>
}

extern "C" {
extern const char plugin_name[] = "strun";
extern const char plugin_type[] = "spank";
extern const unsigned int plugin_version = SLURM_VERSION_NUMBER;
extern const unsigned int spank_plugin_version = 1;
}

namespace {

using namespace strun::edf;

struct PluginState {
  std::string environment;  // the --environment value, "" when not given
  std::string edf_file;     // node side: the EDF file it resolved to
  std::string hooks_dir = "/etc/strun/hooks.d";
  std::string state_dir = "/run/strun";
  std::unique_ptr<Container> container;  // node side, between user_init and exit
  pid_t owner = -1;                      // the slurmstepd that created the container
  // Node side: the container could not be created in user_init, which reported why. Every task of
  // the step then fails instead of running outside the container.
  bool failed = false;
};

PluginState& State() {
  static PluginState* state = new PluginState();  // never destroyed: forked tasks exit with it
  return *state;
}

int OnEnvironment(int val, const char* optarg, int remote) {
  if (optarg == nullptr || *optarg == '\0') {
    slurm_error(
        "--environment needs a value: an EDF path (starting with / or .) or a name in EDF_PATH");
    return -1;
  }
  State().environment = optarg;
  return 0;
}

struct spank_option kEnvironmentOption = {
    const_cast<char*>("environment"),
    const_cast<char*>("EDF"),
    const_cast<char*>(
        "Run the step in the container that the Environment Definition File EDF describes (a path "
        "starting with / or ., or a name looked up as <name>.toml in EDF_PATH, default ~/.edf)"),
    1,
    0,
    OnEnvironment};

void ParseArgs(int ac, char** av) {
  for (int i = 0; i < ac; ++i) {
    std::string arg = av[i];
    if (arg.starts_with("hooks_dir="))
      State().hooks_dir = arg.substr(10);
    else if (arg.starts_with("state_dir="))
      State().state_dir = arg.substr(10);
    else
      slurm_error(
          "spank_strun: unknown plugin argument '%s' ignored (known: hooks_dir=, state_dir=)",
          arg.c_str());
  }
}

// Multi-line messages go out line by line: Slurm prints each with its prefix.
void ReportError(const std::string& message) {
  size_t i = 0;
  while (i <= message.size()) {
    size_t j = message.find('\n', i);
    if (j == std::string::npos) j = message.size();
    slurm_error("%s", message.substr(i, j - i).c_str());
    i = j + 1;
  }
}

EnvMap JobEnvironment(spank_t sp) {
  EnvMap env;
  char** envv = nullptr;
  if (spank_get_item(sp, S_JOB_ENV, &envv) != ESPANK_SUCCESS || envv == nullptr) return env;
  for (char** e = envv; *e; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq) env.emplace(std::string(*e, static_cast<size_t>(eq - *e)), std::string(eq + 1));
  }
  return env;
}

bool ContainerizedStep(spank_t sp) {
  uint32_t step = 0;
  if (spank_get_item(sp, S_JOB_STEPID, &step) != ESPANK_SUCCESS) return false;
  // Batch script, extern and interactive steps have ids just below 2^32.
  return step < SLURM_BATCH_SCRIPT - 16;
}

uint64_t CapBit(int cap) { return uint64_t{1} << cap; }

// Sets the effective set to `effective` (kept in permitted when `keep_permitted`), or clears
// effective, permitted and inheritable when `effective` is 0 and `keep_permitted` is false.
bool SetCapabilities(uint64_t effective, bool keep_permitted) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (keep_permitted && syscall(SYS_capget, &header, data) != 0) return false;
  for (int i = 0; i < 2; ++i) {
    data[i].effective = static_cast<uint32_t>(effective >> (32 * i));
    data[i].inheritable = 0;
    if (!keep_permitted) data[i].permitted = 0;
  }
  return syscall(SYS_capset, &header, data) == 0;
}

// Submit side: resolve and check the EDF as the submitting user.
int CheckOnSubmit() {
  auto edf = LoadEnvironment(State().environment, LoadOptionsFromProcess());
  if (!edf.ok()) {
    ReportError("--environment: " + edf.error().message);
    return -1;
  }
  for (const auto& w : edf->warnings) slurm_info("--environment: warning: %s", w.c_str());
  if (auto st = CheckLaunchable(*edf, UserIdentity::OfProcess()); !st.ok()) {
    ReportError("--environment: " + st.error().message);
    return -1;
  }
  return 0;
}

// Node side: load the EDF as the job sees it and build the container. The error says why not.
strun::Status CreateContainer(spank_t sp) {
  uid_t uid;
  gid_t gid;
  if (spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS ||
      spank_get_item(sp, S_JOB_GID, &gid) != ESPANK_SUCCESS) {
    return strun::MakeError("spank_strun: cannot get the job's user");
  }
  LoadOptions load;
  load.host_env = JobEnvironment(sp);
  auto dir = load.host_env.find("SLURM_SUBMIT_DIR");
  if (dir == load.host_env.end()) dir = load.host_env.find("PWD");
  load.cwd = dir != load.host_env.end() ? dir->second : "/";
  auto edf = LoadEnvironment(State().environment, load);
  if (!edf.ok()) return strun::MakeError("--environment: " + edf.error().message);
  RuntimeOptions opts;
  auto user = UserIdentity::ForUid(uid);
  if (!user.ok()) return strun::MakeError("--environment: " + user.error().message);
  opts.user = *user;
  opts.user.gid = gid;
  opts.hooks_dir = State().hooks_dir;
  opts.state_dir = State().state_dir;
  if (auto st = CheckLaunchable(*edf, opts.user); !st.ok())
    return strun::MakeError("--environment: " + st.error().message);
  // slurmstepd has dropped its effective ids to the user for this callback; the staging
  // directory and the keeper need root, then the ids go back as they were.
  uid_t euid = geteuid();
  gid_t egid = getegid();
  if (seteuid(0) != 0 || setegid(0) != 0)
    return strun::MakeError("spank_strun: cannot regain root to create the container");
  auto container = Container::Create(*edf, opts);
  if (setegid(egid) != 0 || seteuid(euid) != 0)
    return strun::MakeError("spank_strun: cannot drop privileges again");
  if (!container.ok()) return strun::MakeError("--environment: " + container.error().message);
  State().container = std::move(container.value());
  State().edf_file = edf->files.back();
  State().owner = getpid();
  return {};
}

}  // namespace

extern "C" {

int slurm_spank_init(spank_t sp, int ac, char** av) {
  ParseArgs(ac, av);
  if (spank_option_register(sp, &kEnvironmentOption) != ESPANK_SUCCESS) {
    slurm_error("spank_strun: cannot register --environment");
    return -1;
  }
  return 0;
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char** av) {
  spank_context_t ctx = spank_context();
  if (State().environment.empty() || (ctx != S_CTX_LOCAL && ctx != S_CTX_ALLOCATOR)) return 0;
  return CheckOnSubmit();
}

int slurm_spank_user_init(spank_t sp, int ac, char** av) {
  if (spank_context() != S_CTX_REMOTE) return 0;
  char* value = nullptr;
  if (spank_option_getopt(sp, &kEnvironmentOption, &value) == ESPANK_SUCCESS && value && *value) {
    State().environment = value;
  }
  if (State().environment.empty() || !ContainerizedStep(sp)) return 0;
  if (auto st = CreateContainer(sp); !st.ok()) {
    ReportError(st.error().message);
    State().failed = true;
  }
  return 0;  // a failure fails the tasks in task_init_privileged (see the file comment)
}

int slurm_spank_task_init_privileged(spank_t sp, int ac, char** av) {
  if (State().failed) {
    int local_task = -1;
    if (spank_get_item(sp, S_TASK_ID, &local_task) == ESPANK_SUCCESS && local_task == 0)
      slurm_error("--environment: no container on this node (see the error above): its tasks fail");
    return -1;
  }
  if (!State().container) return 0;
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
    slurm_error("--environment: PR_SET_KEEPCAPS: %s", std::strerror(errno));
    return -1;
  }
  return 0;
}

int slurm_spank_task_init(spank_t sp, int ac, char** av) {
  if (!State().container) return 0;
  const Container& c = *State().container;
  // The task is the user now, with the capabilities kept from task_init_privileged in its
  // permitted set: raise the two setns needs, join, and drop them all for good.
  if (!SetCapabilities(CapBit(CAP_SYS_ADMIN) | CapBit(CAP_SYS_CHROOT), true)) {
    slurm_error("--environment: cannot raise capabilities to join the container: %s",
                std::strerror(errno));
    return -1;
  }
  auto joined = c.Join();
  bool dropped = SetCapabilities(0, false) && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == 0;
  if (!dropped) {
    slurm_error("--environment: cannot drop capabilities: %s", std::strerror(errno));
    return -1;
  }
  if (!joined.ok()) {
    ReportError("--environment: " + joined.error().message);
    return -1;
  }
  EnvMap host = JobEnvironment(sp);
  EnvMap task = c.TaskEnvironment(host);
  task[kContainerEnvVar] = State().edf_file;  // strun --environment inside sees it is in one
  for (const auto& [k, v] : host) {
    if (!task.count(k)) spank_unsetenv(sp, k.c_str());
  }
  for (const auto& [k, v] : task) {
    auto it = host.find(k);
    if (it == host.end() || it->second != v) spank_setenv(sp, k.c_str(), v.c_str(), 1);
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    slurm_error("--environment: PR_SET_NO_NEW_PRIVS: %s", std::strerror(errno));
    return -1;
  }
  return 0;
}

int slurm_spank_exit(spank_t sp, int ac, char** av) {
  if (!State().container || State().owner != getpid()) return 0;
  if (auto st = State().container->Destroy(); !st.ok())
    ReportError("--environment: " + st.error().message);
  State().container.reset();
  return 0;
}

}  // extern "C"
