// strun/edf/container.h: the container runtime that runs a job step's tasks in an EDF's image.
//
// One Container per node per step. Create() forks a small "keeper" process that builds the
// container in a private mount namespace and then holds it:
//
//   1. the squashfs image is mounted with squashfuse (opened with the user's credentials);
//   2. an overlay with an in-memory upper layer on top of it becomes the root, made read-only at
//      the end when the EDF says `writable = false`. Every mount of user-controlled content (the
//      image, the overlay and its layers, tmpfs mounts, `:sqsh` mounts) is nodev,nosuid, and EDF
//      bind mounts are nosuid: a device node or a setuid binary in an image stays inert;
//   3. /proc, /sys, /dev (a fresh tmpfs with the host's null, zero, full, random, urandom and tty
//      nodes bind-mounted one by one, a private devpts, /dev/shm and the GPU device nodes present
//      on the host; the image's /dev is hidden), a private /tmp, the host's /etc/hosts and
//      /etc/resolv.conf, and passwd/group entries for the user;
//   4. hooks: executables in RuntimeOptions::hooks_dir (run as root; ignored unless owned by root
//      and not writable by others) and in the user's hooks dir (run as the user), with the
//      annotations (OCI_ANNOTATION_*) and the container root (STRUN_CONTAINER_ROOT, and
//      ENROOT_ROOTFS as enroot names it) in their environment;
//   5. the EDF mounts: sources opened as the user (a mount can never reach what the user could not
//      reach on the host), targets resolved inside the root (a symlink can never escape it);
//   6. pivot_root into the new root.
//
// Tasks then Join() it (setns into its mount namespace and chdir to the working directory) and
// drop to the user with no_new_privs (Enter() does all of it). Destroy() stops the keeper and its
// FUSE daemons; with them the namespace and every mount in it disappear. If the creating thread
// dies, the keeper and the FUSE daemons die with it (PR_SET_PDEATHSIG), so nothing is left behind.
//
// Creating a container needs root (the SPANK plugin in slurmstepd, or a root `strun`). Rootless
// operation (user namespaces) is not implemented: it needs /dev/fuse to be usable by the user.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "strun/edf/edf.h"
#include "strun/edf/user.h"
#include "strun/result.h"

namespace strun::edf {

struct RuntimeOptions {
  UserIdentity user;                             // who the tasks run as
  std::string hooks_dir = "/etc/strun/hooks.d";  // system hooks, run as root
  std::string user_hooks_dir;             // run as the user; "" = <home>/.config/strun/hooks.d
  std::string state_dir = "/run/strun";   // where the staging directory is created
  std::string squashfuse = "squashfuse";  // program that mounts squashfs images
  int mount_timeout_ms = 20000;           // how long a squashfuse mount may take to appear
};

// Variables that the image's environment never replaces: Slurm's and the process manager's per-task
// variables (SLURM_*, PMI_*, PMIX_*). The EDF's [env] may still set PMI*/PMIX* (e.g.
// PMIX_MCA_psec).
bool IsProtectedVariable(const std::string& name);

class Container {
 public:
  // Builds the container for `edf` (see file comment). Blocks until it is ready or failed; a
  // failure leaves nothing behind. The Edf must have been checked with CheckLaunchable().
  static Result<std::unique_ptr<Container>> Create(const Edf& edf, const RuntimeOptions& opts);

  ~Container();  // Destroy()
  Container(const Container&) = delete;
  Container& operator=(const Container&) = delete;

  // In the calling process (root): enter the container's mount namespace and chdir to workdir().
  // Credentials are unchanged; the SPANK plugin lets Slurm drop them.
  Status Join() const;

  // Join(), then become the user (groups, gid, uid) with no_new_privs: for a child that is about
  // to exec a task.
  Status Enter() const;

  // The task environment: the EDF's [env] over the image's environment over `host` (an empty EDF
  // value unsets; Slurm's per-task variables are kept).
  EnvMap TaskEnvironment(const EnvMap& host) const;

  // The working directory of tasks: the EDF's workdir, else the image's, else "/".
  const std::string& workdir() const { return workdir_; }
  pid_t keeper_pid() const { return keeper_; }

  // The image's environment (after its entrypoint ran, when the EDF asks for it), KEY=VALUE.
  const std::vector<std::string>& image_env() const { return image_env_; }

  // Stops the keeper and its FUSE daemons and removes the staging directory. Idempotent, and a
  // no-op in processes forked from the creator (tasks), which only close their descriptors.
  Status Destroy();

 private:
  Container() = default;

  pid_t creator_ = -1;  // Destroy() acts only in the creating process, not in forked tasks
  pid_t keeper_ = -1;
  int control_fd_ = -1;  // closing it tells the keeper to tear down
  int mntns_fd_ = -1;    // the container's mount namespace
  std::string staging_;
  std::string workdir_;
  std::vector<std::string> image_env_;
  EnvMap edf_env_;
  UserIdentity user_;
};

}  // namespace strun::edf
