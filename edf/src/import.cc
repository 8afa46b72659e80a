// strun-edf import: directory or image archive -> squashfs (see import.h).
#include "strun/edf/import.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "process.h"
#include "strun/edf/image_ref.h"

namespace fs = std::filesystem;

namespace strun::edf {
namespace {

using internal::RunProgram;
using internal::RunProgramOutput;

// A temporary directory removed when it goes out of scope.
class TempDir {
 public:
  static Result<TempDir> Create() {
    std::string tmpl = (fs::temp_directory_path() / "strun-import-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      return MakeError(fmt::format("mkdtemp {}: {}", tmpl, std::strerror(errno)));
    return TempDir(tmpl);
  }
  TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

Result<nlohmann::json> ReadJson(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return MakeError(fmt::format("{}: cannot read", p.string()));
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    return MakeError(fmt::format("{}: invalid JSON: {}", p.string(), e.what()));
  }
}

// `rel` under `root` without following any symlink on the way: "" when a component is a symlink
// (a whiteout must never delete outside the root file system).
std::string InsideRoot(const fs::path& root, const std::string& rel) {
  fs::path cur = root;
  fs::path relp(rel);
  auto it = relp.begin();
  std::vector<fs::path> parts(relp.begin(), relp.end());
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i] == "." || parts[i].empty()) continue;
    if (parts[i] == "..") return "";
    cur /= parts[i];
    std::error_code ec;
    auto st = fs::symlink_status(cur, ec);
    if (ec || !fs::is_directory(st) || fs::is_symlink(st)) return "";
  }
  (void)it;
  if (parts.empty() || parts.back() == "..") return "";
  return (cur / parts.back()).string();
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// Applies one layer tar on top of `rootfs`: whiteouts first, then the layer's files.
Status ApplyLayer(const fs::path& rootfs, const fs::path& layer) {
  auto listing = RunProgramOutput({"tar", "-tf", layer.string()});
  if (!listing.ok()) return listing.error();
  std::istringstream lines(*listing);
  std::string entry;
  while (std::getline(lines, entry)) {
    while (entry.starts_with("./")) entry = entry.substr(2);
    fs::path p(entry);
    std::string name = p.filename().string();
    if (!name.starts_with(".wh.")) continue;
    std::string dir = p.parent_path().string();
    if (name == ".wh..wh..opq") {
      std::string target = dir.empty() ? rootfs.string() : InsideRoot(rootfs, dir + "/x");
      if (!dir.empty()) target = target.empty() ? "" : fs::path(target).parent_path().string();
      if (target.empty() || fs::is_symlink(target) || !fs::is_directory(target)) continue;
      for (const auto& child : fs::directory_iterator(target)) fs::remove_all(child.path());
    } else {
      std::string victim = InsideRoot(rootfs, (dir.empty() ? "" : dir + "/") + name.substr(4));
      std::error_code ec;
      if (!victim.empty()) fs::remove_all(victim, ec);
    }
  }
  return RunProgram({"tar", "-xf", layer.string(), "-C", rootfs.string(), "--numeric-owner",
                     "--exclude=.wh.*", "--exclude=*/.wh.*"});
}

// enroot's image metadata: /etc/environment and an /etc/rc that enters the working directory and
// runs the entrypoint.
Status WriteImageMetadata(const fs::path& rootfs, const nlohmann::json& config) {
  nlohmann::json c = config.contains("config") ? config["config"] : nlohmann::json::object();
  fs::path etc = rootfs / "etc";
  if (fs::is_symlink(etc))
    return MakeError("the image's /etc is a symlink; refusing to write metadata through it");
  fs::create_directories(etc);
  for (const char* f : {"environment", "rc"}) {
    std::error_code ec;
    if (fs::is_symlink(etc / f)) fs::remove(etc / f, ec);
  }
  std::ofstream env(etc / "environment", std::ios::trunc);
  if (c.contains("Env") && c["Env"].is_array()) {
    for (const auto& e : c["Env"]) env << e.get<std::string>() << "\n";
  }
  std::string workdir = c.value("WorkingDir", std::string());
  if (workdir.empty()) workdir = "/";
  std::vector<std::string> entrypoint, cmd;
  if (c.contains("Entrypoint") && c["Entrypoint"].is_array())
    entrypoint = c["Entrypoint"].get<std::vector<std::string>>();
  if (c.contains("Cmd") && c["Cmd"].is_array()) cmd = c["Cmd"].get<std::vector<std::string>>();
  if (entrypoint.empty() && cmd.empty()) cmd = {"/bin/sh"};
  std::string ep, cm;
  for (const auto& a : entrypoint) ep += " " + ShellQuote(a);
  for (const auto& a : cmd) cm += " " + ShellQuote(a);
  std::ofstream rc(etc / "rc", std::ios::trunc);
  rc << "mkdir -p \"" << workdir << "\" 2> /dev/null\n"
     << "cd \"" << workdir << "\" && unset OLDPWD || exit 1\n\n"
     << "if [ -s /etc/rc.local ]; then\n    . /etc/rc.local\nfi\n\n"
     << "if [ $# -gt 0 ]; then\n    exec" << ep << " \"$@\"\nelse\n    exec" << ep << cm
     << "\nfi\n";
  return {};
}

struct Archive {
  nlohmann::json config;
  std::vector<fs::path> layers;
  std::string tag;  // "name:tag" when the archive names one
};

Result<Archive> ReadArchive(const fs::path& dir) {
  Archive a;
  if (fs::exists(dir / "manifest.json")) {  // docker-archive
    auto m = ReadJson(dir / "manifest.json");
    if (!m.ok()) return m.error();
    if (!m->is_array() || m->empty()) return MakeError("manifest.json: expected a non-empty array");
    const auto& first = (*m)[0];
    auto cfg = ReadJson(dir / first.value("Config", std::string()));
    if (!cfg.ok()) return cfg.error();
    a.config = *cfg;
    for (const auto& l : first["Layers"]) a.layers.push_back(dir / l.get<std::string>());
    if (first.contains("RepoTags") && first["RepoTags"].is_array() && !first["RepoTags"].empty()) {
      a.tag = first["RepoTags"][0].get<std::string>();
    }
    return a;
  }
  if (fs::exists(dir / "index.json")) {  // OCI layout
    auto blob = [&](const std::string& digest) {
      return dir / "blobs" / "sha256" / digest.substr(digest.find(':') + 1);
    };
    auto index = ReadJson(dir / "index.json");
    if (!index.ok()) return index.error();
    if (!index->contains("manifests") || (*index)["manifests"].empty())
      return MakeError("index.json: no manifests");
    const auto& desc = (*index)["manifests"][0];
    if (desc.contains("annotations"))
      a.tag = desc["annotations"].value("org.opencontainers.image.ref.name", "");
    if (a.tag.find_first_of(":/") == std::string::npos) a.tag.clear();  // a bare tag names no image
    auto manifest = ReadJson(blob(desc.value("digest", "")));
    if (!manifest.ok()) return manifest.error();
    auto cfg = ReadJson(blob((*manifest)["config"].value("digest", "")));
    if (!cfg.ok()) return cfg.error();
    a.config = *cfg;
    for (const auto& l : (*manifest)["layers"]) a.layers.push_back(blob(l.value("digest", "")));
    return a;
  }
  return MakeError(
      "the archive has neither manifest.json (docker-archive) nor index.json (OCI layout)");
}

}  // namespace

Result<std::string> ImportImage(const ImportOptions& opts) {
  std::error_code ec;
  auto st = fs::status(opts.source, ec);
  if (ec || !fs::exists(st))
    return MakeError(fmt::format("import: {}: no such file or directory", opts.source));
  std::string output = opts.output;
  std::optional<TempDir> tmp;
  fs::path rootfs;
  if (fs::is_directory(st)) {
    rootfs = opts.source;
    if (output.empty()) {
      fs::path abs = fs::absolute(opts.source).lexically_normal();
      if (abs.filename().empty()) abs = abs.parent_path();
      output = abs.filename().string() + ".sqsh";
    }
  } else {
    auto t = TempDir::Create();
    if (!t.ok()) return t.error();
    tmp.emplace(std::move(t.value()));
    fs::path unpacked = fs::path(tmp->path()) / "archive";
    rootfs = fs::path(tmp->path()) / "rootfs";
    fs::create_directories(unpacked);
    fs::create_directories(rootfs);
    if (auto r = RunProgram({"tar", "-xf", opts.source, "-C", unpacked.string()}); !r.ok()) {
      return MakeError(fmt::format("import: {} is not a readable tar archive: {}", opts.source,
                                   r.error().message));
    }
    auto archive = ReadArchive(unpacked);
    if (!archive.ok())
      return MakeError(fmt::format("import: {}: {}", opts.source, archive.error().message));
    for (const auto& layer : archive->layers) {
      if (auto r = ApplyLayer(rootfs, layer); !r.ok())
        return MakeError(fmt::format("import: layer {}: {}", layer.string(), r.error().message));
    }
    if (auto r = WriteImageMetadata(rootfs, archive->config); !r.ok())
      return MakeError("import: " + r.error().message);
    if (output.empty()) {
      auto ref =
          archive->tag.empty() ? Result<ImageRef>(MakeError("")) : ParseImageRef(archive->tag, "/");
      if (!ref.ok() || ref->kind != ImageKind::kRegistry) {
        return MakeError(fmt::format("import: {} names no image tag; give the output file with -o",
                                     opts.source));
      }
      output = ref->ImportFileName();
    }
  }
  if (fs::exists(output, ec)) {
    return MakeError(
        fmt::format("import: {} already exists; remove it or choose another name with -o", output));
  }
  if (auto r = RunProgram(
          {"mksquashfs", rootfs.string(), output, "-noappend", "-no-progress", "-quiet"});
      !r.ok()) {
    return MakeError("import: " + r.error().message);
  }
  return fs::absolute(output).string();
}

}  // namespace strun::edf
