#include "strun/edf/mount_spec.h"

#include <fmt/format.h>

#include <algorithm>

namespace strun::edf {

const std::vector<std::string>& KnownMountFlags() {
  static const std::vector<std::string> flags = {"ro",     "rw",     "private", "rprivate", "slave",
                                                 "rslave", "shared", "rshared", "nosuid",   "nodev",
                                                 "noexec", "rbind",  "bind"};
  return flags;
}

bool MountSpec::read_only() const {
  return squashfs || std::find(flags.begin(), flags.end(), "ro") != flags.end();
}

std::string MountSpec::ToString() const {
  std::string s = source + ":" + target;
  if (squashfs) return s + ":sqsh";
  for (size_t i = 0; i < flags.size(); ++i) s += (i == 0 ? ":" : "+") + flags[i];
  return s;
}

std::string NormalizePath(std::string_view absolute) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < absolute.size()) {
    size_t j = absolute.find('/', i);
    if (j == std::string_view::npos) j = absolute.size();
    std::string_view part = absolute.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (auto p : parts) {
    out += '/';
    out += p;
  }
  return out.empty() ? "/" : out;
}

bool IsAbsoluteOrDotRelative(std::string_view p) {
  return p.starts_with("/") || p == "." || p == ".." || p.starts_with("./") || p.starts_with("../");
}

std::string MakeAbsolute(std::string_view path, std::string_view cwd) {
  if (path.starts_with("/")) return NormalizePath(path);
  return NormalizePath(std::string(cwd) + "/" + std::string(path));
}

Result<MountSpec> ParseMountSpec(std::string_view spec, std::string_view cwd) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (true) {
    size_t j = spec.find(':', i);
    fields.push_back(spec.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
    if (j == std::string_view::npos) break;
    i = j + 1;
  }
  if (fields.size() > 3) {
    return MakeError(
        fmt::format("mount \"{}\": too many ':' fields; the form is SRC[:DST[:FLAGS]]", spec));
  }
  std::string_view src = fields[0];
  std::string_view dst = fields.size() > 1 ? fields[1] : fields[0];
  if (src.empty())
    return MakeError(
        fmt::format("mount \"{}\": the source is empty; the form is SRC[:DST[:FLAGS]]", spec));
  if (dst.empty())
    return MakeError(
        fmt::format("mount \"{}\": the destination is empty; the form is SRC[:DST[:FLAGS]]", spec));
  for (auto [what, p] : {std::pair{"source", src}, std::pair{"destination", dst}}) {
    if (!IsAbsoluteOrDotRelative(p)) {
      return MakeError(fmt::format(
          "mount \"{}\": {} '{}' must be an absolute path or start with './'", spec, what, p));
    }
  }
  MountSpec m;
  m.source = MakeAbsolute(src, cwd);
  m.target = MakeAbsolute(dst, cwd);
  if (fields.size() == 3) {
    std::string_view flags = fields[2];
    if (flags.empty())
      return MakeError(fmt::format("mount \"{}\": empty FLAGS after the last ':'", spec));
    size_t k = 0;
    while (true) {
      size_t e = flags.find('+', k);
      std::string flag(
          flags.substr(k, e == std::string_view::npos ? std::string_view::npos : e - k));
      if (flag == "sqsh") {
        if (flags != "sqsh") {
          return MakeError(fmt::format(
              "mount \"{}\": 'sqsh' must be the only flag (it mounts a squashfs file)", spec));
        }
        m.squashfs = true;
      } else if (std::find(KnownMountFlags().begin(), KnownMountFlags().end(), flag) ==
                 KnownMountFlags().end()) {
        std::string known;
        for (auto& f : KnownMountFlags()) known += (known.empty() ? "" : ", ") + f;
        return MakeError(
            fmt::format("mount \"{}\": unknown flag '{}'; use {} or a sole sqsh, joined with '+'",
                        spec, flag, known));
      } else if (std::find(m.flags.begin(), m.flags.end(), flag) == m.flags.end()) {
        m.flags.push_back(flag);
      }
      if (e == std::string_view::npos) break;
      k = e + 1;
    }
    bool ro = std::find(m.flags.begin(), m.flags.end(), "ro") != m.flags.end();
    bool rw = std::find(m.flags.begin(), m.flags.end(), "rw") != m.flags.end();
    if (ro && rw)
      return MakeError(
          fmt::format("mount \"{}\": flags 'ro' and 'rw' contradict each other", spec));
  }
  if (m.target == "/") {
    return MakeError(fmt::format("mount \"{}\": cannot mount over the container's root '/'", spec));
  }
  return m;
}

}  // namespace strun::edf
