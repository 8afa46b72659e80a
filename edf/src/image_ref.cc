#include "strun/edf/image_ref.h"

#include <fmt/format.h>

#include "strun/edf/mount_spec.h"

namespace strun::edf {
namespace {

constexpr const char* kDockerHub = "registry-1.docker.io";

bool ValidRepositoryChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' || c == '.' || c == '_' ||
         c == '-';
}

bool ValidTagChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == ':';
}

}  // namespace

const char* ImageKindName(ImageKind kind) {
  switch (kind) {
    case ImageKind::kNone:
      return "none";
    case ImageKind::kSquashfs:
      return "squashfs";
    case ImageKind::kRegistry:
      return "registry";
  }
  return "none";
}

std::string ImageRef::ImportFileName() const {
  std::string shown = name;
  if (registry == kDockerHub && shown.starts_with("library/")) shown = shown.substr(8);
  for (char& c : shown) {
    if (c == '/') c = '+';
  }
  return shown + (tag.empty() ? "" : "+" + tag) + ".sqsh";
}

Result<ImageRef> ParseImageRef(std::string_view image, std::string_view cwd) {
  ImageRef ref;
  if (image.empty()) return ref;
  if (image.starts_with("/") || image.starts_with("./") || image.starts_with("../")) {
    ref.kind = ImageKind::kSquashfs;
    ref.path = MakeAbsolute(image, cwd);
    return ref;
  }
  ref.kind = ImageKind::kRegistry;
  std::string_view rest = image;
  // [USER@] comes before the registry; an '@' after the last '/' would be a digest.
  if (size_t at = rest.find('@'); at != std::string_view::npos && rest.find_first_of("#/") > at) {
    ref.user = std::string(rest.substr(0, at));
    rest = rest.substr(at + 1);
  }
  std::string_view digest;
  if (size_t at = rest.find("@sha256:"); at != std::string_view::npos) {
    digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
  }
  if (size_t hash = rest.find('#'); hash != std::string_view::npos) {
    ref.registry = std::string(rest.substr(0, hash));
    rest = rest.substr(hash + 1);
  } else if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view first = rest.substr(0, slash);
    // docker's rule: a first component with '.' or ':' (or "localhost") is a registry host.
    if (first.find_first_of(".:") != std::string_view::npos || first == "localhost") {
      ref.registry = std::string(first);
      rest = rest.substr(slash + 1);
    }
  }
  size_t last_slash = rest.rfind('/');
  size_t colon = rest.find(':', last_slash == std::string_view::npos ? 0 : last_slash);
  ref.name = std::string(rest.substr(0, colon));
  ref.tag = colon == std::string_view::npos ? "" : std::string(rest.substr(colon + 1));
  if (!digest.empty()) ref.tag = std::string(digest);
  if (ref.tag.empty()) ref.tag = "latest";
  if (ref.registry.empty() || ref.registry == "docker.io" || ref.registry == "index.docker.io")
    ref.registry = kDockerHub;
  if (ref.registry == kDockerHub && ref.name.find('/') == std::string::npos)
    ref.name = "library/" + ref.name;

  bool ok = !ref.name.empty() && !ref.name.starts_with("/") && !ref.name.ends_with("/");
  for (char c : ref.name) ok = ok && ValidRepositoryChar(c);
  for (char c : ref.tag) ok = ok && ValidTagChar(c);
  if (!ok || ref.registry.find('/') != std::string::npos) {
    return MakeError(
        fmt::format("image \"{}\" is neither a squashfs path (start it with '/' or './') nor a "
                    "registry reference of the "
                    "form [USER@][REGISTRY#]IMAGE[:TAG] (lower-case name, e.g. "
                    "nvcr.io#nvidia/pytorch:24.04-py3)",
                    image));
  }
  return ref;
}

std::string ImportHint(std::string_view image, const ImageRef& ref) {
  std::string file = ref.ImportFileName();
  std::string uri = ref.registry == kDockerHub ? ref.name + ":" + ref.tag
                                               : ref.registry + "#" + ref.name + ":" + ref.tag;
  return fmt::format(
      "image \"{}\" is a registry reference, and strun does not pull images from registries. "
      "Import it once "
      "into a squashfs file and point the EDF at that file:\n"
      "  on a machine with registry access: enroot import -o {} docker://{}\n"
      "  or from a local archive:           podman save -o image.tar {} && strun-edf import "
      "image.tar\n"
      "then set in the EDF:                 image = \"/path/to/{}\"",
      image, file, uri, image, file);
}

}  // namespace strun::edf
