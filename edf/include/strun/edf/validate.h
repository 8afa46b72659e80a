// strun/edf/validate.h: can this EDF start a container for this user, here and now?
#pragma once

#include "strun/edf/edf.h"
#include "strun/edf/user.h"
#include "strun/result.h"

namespace strun::edf {

// Checks, with `user`'s own credentials, everything LoadEnvironment cannot: the image is a
// squashfs file the user can read (a registry reference gets ImportHint), every bind-mount source
// exists and is reachable by the user, every `sqsh` source is a readable file, and `workdir` is
// absolute. All problems are reported together, one per line.
Status CheckLaunchable(const Edf& edf, const UserIdentity& user);

}  // namespace strun::edf
