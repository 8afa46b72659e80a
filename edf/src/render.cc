#include "strun/edf/render.h"

#include <toml++/toml.h>

#include <sstream>

namespace strun::edf {
namespace {

// A resolved value as the loader reads it back: `$` doubled, so that a literal "${X}" (written
// "$${X}" in the EDF) is not expanded again (tests/fuzz/regressions/fuzz_edf_load).
std::string Literal(std::string_view value) {
  std::string out;
  for (char c : value) {
    out += c;
    if (c == '$') out += '$';
  }
  return out;
}

}  // namespace

std::string RenderToml(const Edf& edf) {
  toml::table root;
  if (!edf.image.empty()) root.insert("image", Literal(edf.image));
  if (edf.workdir) root.insert("workdir", Literal(*edf.workdir));
  root.insert("entrypoint", edf.entrypoint);
  root.insert("writable", edf.writable);
  toml::array mounts;
  for (const auto& m : edf.mounts) mounts.push_back(Literal(m.ToString()));
  root.insert("mounts", std::move(mounts));
  toml::table env;
  for (const auto& [k, v] : edf.env) env.insert(k, Literal(v));
  root.insert("env", std::move(env));
  // Flattened keys contain dots: toml++ quotes them, so they read back as the same flat keys.
  toml::table annotations;
  for (const auto& [k, v] : edf.annotations) annotations.insert(k, Literal(v));
  root.insert("annotations", std::move(annotations));
  std::ostringstream out;
  out << "# resolved from:";
  for (const auto& f : edf.files) out << " " << f;
  out << "\n" << root << "\n";
  return out.str();
}

nlohmann::json RenderJson(const Edf& edf) {
  nlohmann::json j;
  j["image"] = edf.image;
  j["image_kind"] = ImageKindName(edf.image_ref.kind);
  if (edf.image_ref.kind == ImageKind::kRegistry) {
    j["image_ref"] = {{"user", edf.image_ref.user},
                      {"registry", edf.image_ref.registry},
                      {"name", edf.image_ref.name},
                      {"tag", edf.image_ref.tag},
                      {"import_file", edf.image_ref.ImportFileName()}};
  }
  j["workdir"] = edf.workdir ? nlohmann::json(*edf.workdir) : nlohmann::json(nullptr);
  j["entrypoint"] = edf.entrypoint;
  j["writable"] = edf.writable;
  j["mounts"] = nlohmann::json::array();
  for (const auto& m : edf.mounts) {
    j["mounts"].push_back({{"source", m.source},
                           {"target", m.target},
                           {"flags", m.flags},
                           {"type", m.squashfs ? "sqsh" : "bind"},
                           {"spec", m.ToString()}});
  }
  j["env"] = edf.env;
  j["annotations"] = edf.annotations;
  j["files"] = edf.files;
  j["warnings"] = edf.warnings;
  return j;
}

}  // namespace strun::edf
