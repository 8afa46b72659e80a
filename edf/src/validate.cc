#include "strun/edf/validate.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace strun::edf {
namespace {

// Returns "" when `path` opens as the user with `flags` and has the wanted type; a squashfs file
// must start with the squashfs magic.
std::string CheckPath(const UserIdentity& user, const std::string& path, int flags,
                      bool want_squashfs) {
  auto fd = OpenAsUser(user, path, flags);
  if (!fd.ok()) return fd.error().message;
  struct stat st;
  std::string err;
  char magic[4] = {};
  if (::fstat(*fd, &st) != 0)
    err = fmt::format("{}: cannot stat", path);
  else if (want_squashfs && !S_ISREG(st.st_mode))
    err = fmt::format("{}: not a regular file", path);
  else if (want_squashfs &&
           (::pread(*fd, magic, 4, 0) != 4 || std::string_view(magic, 4) != "hsqs")) {
    err = fmt::format("{}: not a squashfs image (create one with mksquashfs or strun-edf import)",
                      path);
  }
  ::close(*fd);
  return err;
}

}  // namespace

Status CheckLaunchable(const Edf& edf, const UserIdentity& user) {
  std::vector<std::string> problems;
  std::string origin = edf.files.empty() ? std::string("EDF") : edf.files.back();
  switch (edf.image_ref.kind) {
    case ImageKind::kNone:
      break;
    case ImageKind::kRegistry:
      problems.push_back(ImportHint(edf.image, edf.image_ref));
      break;
    case ImageKind::kSquashfs:
      if (auto e = CheckPath(user, edf.image_ref.path, O_RDONLY, true); !e.empty()) {
        problems.push_back(
            fmt::format("image: {}; import or copy the image there, or fix 'image'", e));
      }
      break;
  }
  for (const auto& m : edf.mounts) {
    std::string e = m.squashfs ? CheckPath(user, m.source, O_RDONLY, true)
                               : CheckPath(user, m.source, O_PATH, false);
    if (!e.empty()) problems.push_back(fmt::format("mount \"{}\": source {}", m.ToString(), e));
  }
  if (edf.workdir && !edf.workdir->starts_with("/")) {
    problems.push_back(fmt::format("workdir \"{}\" must be absolute", *edf.workdir));
  }
  if (problems.empty()) return {};
  std::string msg = fmt::format("{}: the container cannot start:", origin);
  for (const auto& p : problems) msg += "\n  " + p;
  return MakeError(msg);
}

}  // namespace strun::edf
