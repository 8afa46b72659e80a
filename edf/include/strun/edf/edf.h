// strun/edf/edf.h: Environment Definition Files (EDF), the CSCS Container Engine's TOML files
// that describe the container a Slurm step runs in.
//
// An EDF names an image, mounts, a working directory, environment variables and annotations:
//
//   image = "${SCRATCH}/ce-images/ngc-nanotron+24.04.sqsh"
//   mounts = ["/capstor", "${SCRATCH}/data.sqsh:/data:sqsh"]
//   workdir = "${SCRATCH}/tutorials/nanotron-pretrain/"
//   [annotations]
//   com.hooks.aws_ofi_nccl.enabled = "true"
//   [env]
//   NCCL_DEBUG = "INFO"
//
// LoadEnvironment() turns an `--environment` value into a fully resolved Edf: the file is found
// (FindEnvironment), parsed as strict TOML 1.0, its base environments are loaded and merged
// underneath it, `${VAR}` references are expanded from the host environment, relative paths are
// made absolute against the submit directory, and the mounts and image reference are checked for
// syntax. Nothing on the file system besides the EDF files themselves is touched: CheckLaunchable()
// (validate.h) checks that the image and mount sources exist before a container is started.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strun/edf/image_ref.h"
#include "strun/edf/mount_spec.h"
#include "strun/environment.h"
#include "strun/result.h"

namespace strun::edf {

// Environment variables by name: strun::EnvMap (strun/environment.h), sorted so that rendering
// is stable.
using strun::EnvMap;

// A fully resolved EDF: base environments merged, variables expanded, paths absolute.
struct Edf {
  std::string image;                   // as written (expanded), "" when the EDF names none
  ImageRef image_ref;                  // what `image` refers to (kind kNone when empty)
  std::optional<std::string> workdir;  // absent: the image's working directory, else "/"
  bool entrypoint = false;             // run the image's entrypoint once per node
  bool writable = true;                // false: the container's root file system is read-only
  std::vector<MountSpec> mounts;       // in order, exact duplicates dropped
  EnvMap env;                          // [env]; an empty value unsets the variable
  EnvMap annotations;                  // [annotations], nested tables flattened to dotted keys
  std::vector<std::string> files;      // the EDF files merged, bases first, this file last
  std::vector<std::string> warnings;   // unknown keys and other non-fatal findings
};

// Inputs that the submit side gives the loader. Everything comes from here, never from the
// process's own environment, so the loader is a pure function and testable.
struct LoadOptions {
  EnvMap host_env;  // variables for ${VAR} expansion; also EDF_PATH and HOME for name lookup
  std::string cwd;  // the submit directory: relative paths in an EDF are relative to it
};

// LoadOptions of the calling process: its environment and working directory.
LoadOptions LoadOptionsFromProcess();

// Maximum base_environment nesting (the CE documents "up to 10 levels").
inline constexpr int kMaxBaseDepth = 10;

// The file an `--environment` value names: a path (relative to opts.cwd) if it starts with `/`
// or `.`; otherwise `<dir>/<name>.toml` for the first dir of the colon-separated EDF_PATH
// (default $HOME/.edf) where that file exists.
Result<std::string> FindEnvironment(std::string_view name, const LoadOptions& opts);

// Finds, parses, inherits, expands and checks the EDF named by `name` (see file comment).
Result<Edf> LoadEnvironment(std::string_view name, const LoadOptions& opts);

// Annotations as hook environment variables: OCI_ANNOTATION_<key with '.' replaced by "__">.
EnvMap AnnotationEnvironment(const EnvMap& annotations);

}  // namespace strun::edf
