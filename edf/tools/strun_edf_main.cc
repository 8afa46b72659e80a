// strun-edf: render, validate and import Environment Definition Files.
//
//   strun-edf render ENV [--json]   print the fully resolved EDF
//   strun-edf validate ENV          resolve it and check that its container can start here
//   strun-edf import SRC [-o OUT]   write a squashfs image from a directory or an OCI/docker
//   archive
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "strun/edf/edf.h"
#include "strun/edf/import.h"
#include "strun/edf/render.h"
#include "strun/edf/validate.h"

namespace {

using namespace strun::edf;

strun::Result<Edf> Load(const std::string& env) {
  auto edf = LoadEnvironment(env, LoadOptionsFromProcess());
  if (edf.ok()) {
    for (const auto& w : edf->warnings) std::cerr << "strun-edf: warning: " << w << "\n";
  }
  return edf;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"strun-edf: render, validate and import Environment Definition Files (EDF)"};
  app.require_subcommand(1);

  std::string env;
  bool json = false;
  auto* render = app.add_subcommand(
      "render", "print the fully resolved EDF (bases merged, variables expanded)");
  render->add_option("ENV", env, "EDF path (starting with / or .) or name looked up in EDF_PATH")
      ->required();
  render->add_flag("--json", json, "print JSON instead of TOML");

  auto* validate = app.add_subcommand(
      "validate", "check that the EDF resolves and its container can start here");
  validate->add_option("ENV", env, "EDF path (starting with / or .) or name looked up in EDF_PATH")
      ->required();

  ImportOptions import_opts;
  auto* import = app.add_subcommand(
      "import", "write a squashfs image from a directory or an OCI/docker archive");
  import
      ->add_option("SOURCE", import_opts.source,
                   "a root file system directory, or a tar from `podman save`/`docker save`")
      ->required();
  import->add_option("-o,--output", import_opts.output,
                     "output file (default: enroot-style name from the archive's tag, e.g. "
                     "nvidia+pytorch+24.04-py3.sqsh)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is success; usage errors exit 2 like strun's other tools (CLI11's codes are not).
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (render->parsed()) {
    auto edf = Load(env);
    if (!edf.ok()) {
      std::cerr << "strun-edf: error: " << edf.error().message << "\n";
      return 1;
    }
    if (json)
      std::cout << RenderJson(*edf).dump(2) << "\n";
    else
      std::cout << RenderToml(*edf);
    return 0;
  }
  if (validate->parsed()) {
    auto edf = Load(env);
    if (!edf.ok()) {
      std::cerr << "strun-edf: error: " << edf.error().message << "\n";
      return 1;
    }
    if (auto st = CheckLaunchable(*edf, UserIdentity::OfProcess()); !st.ok()) {
      std::cerr << "strun-edf: error: " << st.error().message << "\n";
      return 1;
    }
    std::cout << edf->files.back() << ": OK\n";
    return 0;
  }
  auto out = ImportImage(import_opts);
  if (!out.ok()) {
    std::cerr << "strun-edf: error: " << out.error().message << "\n";
    return 1;
  }
  std::cout << *out << "\n";
  return 0;
}
