// Fuzzes EDF loading (edf/edf.h): strict TOML, base_environment inheritance, ${VAR} expansion,
// mounts and image references. The input is up to kMaxFiles EDFs separated by kSeparator lines;
// part i is written as e<i>.toml into a private scratch directory, which is also HOME, EDF_PATH
// and the submit directory, so names such as base_environment = "e1" resolve there. A loaded EDF
// must be resolved (absolute normalised mounts, the loaded file last) and RenderToml must read
// back to the same EDF (render.h).
#include <cstdint>
#include <filesystem>

#include "fuzz_util.h"
#include "strun/edf/edf.h"
#include "strun/edf/render.h"

namespace {

constexpr std::string_view kSeparator = "\n#---\n";
constexpr size_t kMaxFiles = 8;

using strun::edf::Edf;

strun::edf::LoadOptions Options() {
  const std::string& dir = strun::fuzz::ScratchDir::Path();
  strun::edf::LoadOptions opts;
  opts.host_env = {{"HOME", dir},  {"EDF_PATH", dir}, {"SCRATCH", "/scratch/u"},
                   {"USER", "u"},  {"EMPTY", ""},     {"SLURM_JOB_ID", "42"},
                   {"DOLLAR", "$"}};
  opts.cwd = dir;
  return opts;
}

void CheckResolved(const Edf& edf, const std::string& loaded) {
  FUZZ_CHECK(!edf.files.empty() && edf.files.back() == loaded, "the loaded file is not last");
  for (size_t i = 0; i < edf.mounts.size(); ++i) {
    const auto& m = edf.mounts[i];
    FUZZ_CHECK(m.source.starts_with("/") && strun::edf::NormalizePath(m.source) == m.source,
               "a mount source is not absolute and normalised");
    FUZZ_CHECK(m.target.starts_with("/") && strun::edf::NormalizePath(m.target) == m.target,
               "a mount target is not absolute and normalised");
    for (size_t j = 0; j < i; ++j) FUZZ_CHECK(!(edf.mounts[j] == m), "a duplicate mount is kept");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = strun::fuzz::ScratchDir::Path();
  // Each input starts from an empty directory: files of an earlier input must not resolve.
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::filesystem::remove(entry.path());
  }
  auto parts = strun::fuzz::Split(strun::fuzz::AsText(data, size), kSeparator);
  if (parts.size() > kMaxFiles) parts.resize(kMaxFiles);
  for (size_t i = 0; i < parts.size(); ++i) {
    strun::fuzz::ScratchDir::Write("e" + std::to_string(i) + ".toml", parts[i]);
  }
  const auto opts = Options();
  auto edf = strun::edf::LoadEnvironment("e0", opts);
  if (!edf.ok()) {
    FUZZ_CHECK(!edf.error().message.empty(), "an error without a message");
    return 0;
  }
  CheckResolved(*edf, dir + "/e0.toml");
  (void)strun::edf::AnnotationEnvironment(edf->annotations);
  (void)strun::edf::RenderJson(*edf).dump();

  const std::string rendered = strun::fuzz::ScratchDir::Write("rendered.toml", RenderToml(*edf));
  auto again = strun::edf::LoadEnvironment(rendered, opts);
  FUZZ_CHECK(again.ok(), "the rendered EDF does not load");
  FUZZ_CHECK(again->image == edf->image && again->workdir == edf->workdir &&
                 again->entrypoint == edf->entrypoint && again->writable == edf->writable &&
                 again->mounts == edf->mounts && again->env == edf->env &&
                 again->annotations == edf->annotations,
             "the rendered EDF loads to another EDF");
  return 0;
}
