// strun/edf/user.h: acting with a user's credentials.
//
// The runtime runs as root (inside slurmstepd, or a root `strun`), but every path an EDF names is
// opened with the credentials of the user who submitted the job, so that an EDF can never reach a
// file its user could not reach on the host. The file descriptor opened as the user is then what
// root mounts, so the path cannot be swapped between the check and the use.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::edf {

struct UserIdentity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
  std::string name;           // login name, "" when the uid has no passwd entry
  std::string home;

  // The calling process's real user (and its groups).
  static UserIdentity OfProcess();
  // A user from the passwd database, with the groups initgroups() would give.
  static Result<UserIdentity> ForUid(uid_t uid);
};

// Drops the calling process to `user` for good: supplementary groups, gid, uid. For children
// that are about to exec user code.
Status BecomeUser(const UserIdentity& user);

// Runs `fn` in a forked child that has become `user` (when `user` differs from the caller, else in
// a child all the same, so that `fn` cannot disturb the caller). `fn` returns "" for success or an
// error message, which becomes the returned Error.
Status RunAsUser(const UserIdentity& user, const std::function<std::string()>& fn);

// open(path, flags | O_CLOEXEC) performed as `user`; the descriptor is passed back to the caller.
Result<int> OpenAsUser(const UserIdentity& user, const std::string& path, int flags);

}  // namespace strun::edf
