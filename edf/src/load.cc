// Loading an EDF: lookup, strict TOML parsing, base_environment inheritance, expansion.
#include <fmt/format.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>

#include "strun/edf/edf.h"
#include "strun/edf/expand.h"

namespace strun::edf {
namespace {

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string Where(const std::string& file, const toml::node& node) {
  const auto& src = node.source();
  if (src.begin.line == 0) return file;
  return fmt::format("{}:{}:{}", file, src.begin.line, src.begin.column);
}

std::string TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date/time";
  }
}

// One file's own settings, expanded, before merging.
struct Layer {
  std::vector<std::string> bases;
  std::optional<std::string> image, workdir;
  std::optional<bool> entrypoint, writable;
  std::vector<MountSpec> mounts;
  EnvMap env, annotations;
};

class Loader {
 public:
  explicit Loader(const LoadOptions& opts) : opts_(opts) {}

  Status Load(const std::string& path, std::vector<std::string>& chain, Edf& out) {
    chain.push_back(path);
    auto layer = ReadLayer(path, out.warnings);
    if (!layer.ok()) return layer.error();
    for (const auto& base_name : layer->bases) {
      auto base = FindEnvironment(base_name, opts_);
      if (!base.ok())
        return MakeError(fmt::format("{}: base_environment: {}", path, base.error().message));
      if (std::find(chain.begin(), chain.end(), *base) != chain.end()) {
        return MakeError(
            fmt::format("base_environment cycle: {} -> {}; remove one of these references",
                        Chain(chain), *base));
      }
      if (static_cast<int>(chain.size()) > kMaxBaseDepth) {
        return MakeError(
            fmt::format("base_environment nests more than {} levels: {} -> {}; flatten the chain",
                        kMaxBaseDepth, Chain(chain), *base));
      }
      if (auto st = Load(*base, chain, out); !st.ok()) return st;
    }
    chain.pop_back();
    Merge(*layer, out);
    out.files.push_back(path);
    return {};
  }

 private:
  static std::string Chain(const std::vector<std::string>& chain) {
    std::string s;
    for (const auto& c : chain) s += (s.empty() ? "" : " -> ") + c;
    return s;
  }

  static void Merge(const Layer& layer, Edf& out) {
    if (layer.image) out.image = *layer.image;
    if (layer.workdir) out.workdir = *layer.workdir;
    if (layer.entrypoint) out.entrypoint = *layer.entrypoint;
    if (layer.writable) out.writable = *layer.writable;
    for (const auto& m : layer.mounts) {
      if (std::find(out.mounts.begin(), out.mounts.end(), m) == out.mounts.end())
        out.mounts.push_back(m);
    }
    for (const auto& [k, v] : layer.env) out.env[k] = v;
    for (const auto& [k, v] : layer.annotations) out.annotations[k] = v;
  }

  Result<std::string> Expand(const std::string& file, const toml::node& node,
                             std::string_view key) {
    const auto* s = node.as_string();
    if (!s) {
      return MakeError(
          fmt::format("{}: '{}' must be a string, not {}", Where(file, node), key, TypeName(node)));
    }
    return ExpandVariables(s->get(), opts_.host_env,
                           fmt::format("{}: '{}'", Where(file, node), key));
  }

  Result<bool> Bool(const std::string& file, const toml::node& node, std::string_view key) {
    if (const auto* b = node.as_boolean()) return b->get();
    return MakeError(fmt::format("{}: '{}' must be true or false (unquoted), not {}",
                                 Where(file, node), key, TypeName(node)));
  }

  Status Annotations(const std::string& file, const toml::table& table, const std::string& prefix,
                     EnvMap& out) {
    for (const auto& [k, node] : table) {
      std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
      if (const auto* sub = node.as_table()) {
        if (auto st = Annotations(file, *sub, key, out); !st.ok()) return st;
      } else if (node.is_string()) {
        auto v = Expand(file, node, "annotations." + key);
        if (!v.ok()) return v.error();
        out[key] = *v;
      } else if (const auto* b = node.as_boolean()) {
        out[key] = b->get() ? "true" : "false";
      } else if (const auto* i = node.as_integer()) {
        out[key] = std::to_string(i->get());
      } else {
        return MakeError(fmt::format("{}: annotation '{}' must be a string, not {}",
                                     Where(file, node), key, TypeName(node)));
      }
    }
    return {};
  }

  Result<Layer> ReadLayer(const std::string& path, std::vector<std::string>& warnings) {
    toml::table root;
    try {
      root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
      const auto& b = e.source().begin;
      if (b.line == 0) return MakeError(fmt::format("{}: {}", path, e.description()));
      return MakeError(
          fmt::format("{}:{}:{}: invalid TOML: {}", path, b.line, b.column, e.description()));
    }
    Layer layer;
    for (const auto& [k, node] : root) {
      std::string key(k.str());
      if (key == "image" || key == "workdir") {
        auto v = Expand(path, node, key);
        if (!v.ok()) return v.error();
        if (key == "image") {
          layer.image = *v;
        } else if (v->starts_with("./") || v->starts_with("../") || *v == ".") {
          layer.workdir = MakeAbsolute(*v, opts_.cwd);
        } else if (!v->empty() && !v->starts_with("/")) {
          return MakeError(
              fmt::format("{}: 'workdir' \"{}\" must be an absolute path or start with './'",
                          Where(path, node), *v));
        } else if (!v->empty()) {
          layer.workdir = NormalizePath(*v);
        }
      } else if (key == "entrypoint" || key == "writable") {
        auto v = Bool(path, node, key);
        if (!v.ok()) return v.error();
        (key == "entrypoint" ? layer.entrypoint : layer.writable) = *v;
      } else if (key == "base_environment") {
        std::vector<const toml::node*> items;
        if (const auto* arr = node.as_array()) {
          for (const auto& item : *arr) items.push_back(&item);
        } else {
          items.push_back(&node);
        }
        for (const auto* item : items) {
          auto v = Expand(path, *item, key);
          if (!v.ok()) return v.error();
          if (!v->empty()) layer.bases.push_back(*v);
        }
      } else if (key == "mounts") {
        const auto* arr = node.as_array();
        if (!arr) {
          return MakeError(fmt::format("{}: 'mounts' must be an array of strings, not {}",
                                       Where(path, node), TypeName(node)));
        }
        for (const auto& item : *arr) {
          auto v = Expand(path, item, key);
          if (!v.ok()) return v.error();
          auto m = ParseMountSpec(*v, opts_.cwd);
          if (!m.ok())
            return MakeError(fmt::format("{}: {}", Where(path, item), m.error().message));
          layer.mounts.push_back(*m);
        }
      } else if (key == "env") {
        const auto* table = node.as_table();
        if (!table) {
          return MakeError(fmt::format("{}: 'env' must be a table ([env]), not {}",
                                       Where(path, node), TypeName(node)));
        }
        for (const auto& [name, value] : *table) {
          std::string var(name.str());
          if (var.empty() || var.find('=') != std::string::npos) {
            return MakeError(fmt::format("{}: env name \"{}\" is not a valid variable name",
                                         Where(path, value), var));
          }
          auto v = Expand(path, value, "env." + var);
          if (!v.ok()) return v.error();
          layer.env[var] = *v;
        }
      } else if (key == "annotations") {
        const auto* table = node.as_table();
        if (!table) {
          return MakeError(fmt::format("{}: 'annotations' must be a table ([annotations]), not {}",
                                       Where(path, node), TypeName(node)));
        }
        if (auto st = Annotations(path, *table, "", layer.annotations); !st.ok()) return st.error();
      } else {
        const auto& at = k.source().begin;
        warnings.push_back(
            fmt::format("{}:{}:{}: unknown key '{}' ignored (known: image, base_environment, "
                        "workdir, entrypoint, writable, mounts, env, annotations)",
                        path, at.line, at.column, key));
      }
    }
    return layer;
  }

  const LoadOptions& opts_;
};

}  // namespace

LoadOptions LoadOptionsFromProcess() {
  LoadOptions opts;
  opts.host_env = ProcessEnvironment();
  char buf[4096];
  if (::getcwd(buf, sizeof buf))
    opts.cwd = buf;
  else
    opts.cwd = "/";
  return opts;
}

Result<std::string> FindEnvironment(std::string_view name, const LoadOptions& opts) {
  if (name.empty()) return MakeError("--environment: empty value; give an EDF path or name");
  if (name.starts_with("/") || name.starts_with(".")) {
    std::string path = name.starts_with("/") ? NormalizePath(name) : MakeAbsolute(name, opts.cwd);
    if (!IsRegularFile(path)) {
      return MakeError(fmt::format("EDF '{}' not found (looked for file {})", name, path));
    }
    return path;
  }
  std::vector<std::string> dirs;
  auto it = opts.host_env.find("EDF_PATH");
  if (it != opts.host_env.end() && !it->second.empty()) {
    std::string_view list = it->second;
    size_t i = 0;
    while (i <= list.size()) {
      size_t j = list.find(':', i);
      if (j == std::string_view::npos) j = list.size();
      if (j > i) dirs.emplace_back(list.substr(i, j - i));
      i = j + 1;
    }
  } else {
    auto home = opts.host_env.find("HOME");
    if (home != opts.host_env.end() && !home->second.empty())
      dirs.push_back(home->second + "/.edf");
  }
  std::string searched;
  for (const auto& dir : dirs) {
    std::string path = NormalizePath(dir + "/" + std::string(name) + ".toml");
    if (IsRegularFile(path)) return path;
    searched += (searched.empty() ? "" : ", ") + path;
  }
  std::string hint;
  if (IsRegularFile(MakeAbsolute(std::string("./") + std::string(name), opts.cwd))) {
    hint = fmt::format("; to use the file in the current directory write --environment=./{}", name);
  }
  if (dirs.empty()) {
    return MakeError(fmt::format(
        "EDF '{}' not found: neither EDF_PATH nor HOME is set to search in; give a path "
        "starting with '/' or './'{}",
        name, hint));
  }
  return MakeError(
      fmt::format("EDF '{}' not found in the search path (looked for {}); set EDF_PATH to the "
                  "directories holding <name>.toml, or give a path starting with '/' or './'{}",
                  name, searched, hint));
}

Result<Edf> LoadEnvironment(std::string_view name, const LoadOptions& opts) {
  auto path = FindEnvironment(name, opts);
  if (!path.ok()) return path.error();
  Edf edf;
  std::vector<std::string> chain;
  Loader loader(opts);
  if (auto st = loader.Load(*path, chain, edf); !st.ok()) return st.error();
  auto ref = ParseImageRef(edf.image, opts.cwd);
  if (!ref.ok()) return MakeError(fmt::format("{}: {}", edf.files.back(), ref.error().message));
  edf.image_ref = *ref;
  if (ref->kind == ImageKind::kSquashfs) edf.image = ref->path;
  return edf;
}

EnvMap AnnotationEnvironment(const EnvMap& annotations) {
  EnvMap out;
  for (const auto& [k, v] : annotations) {
    std::string name = "OCI_ANNOTATION_";
    for (char c : k) {
      if (c == '.')
        name += "__";
      else
        name += c;
    }
    out[name] = v;
  }
  return out;
}

}  // namespace strun::edf
