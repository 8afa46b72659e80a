// strun/edf/image_ref.h: what an EDF `image` names.
//
// A value starting with `/`, `./` or `../` is a squashfs file (made absolute against the submit
// directory). Anything else is a registry reference, either in enroot's form
// `[USER@][REGISTRY#]IMAGE[:TAG]` or in docker's `registry.host/name:tag`. strun cannot pull
// from registries; ImportHint() tells the user how to turn a reference into a squashfs file.
#pragma once

#include <string>
#include <string_view>

#include "strun/result.h"

namespace strun::edf {

enum class ImageKind { kNone, kSquashfs, kRegistry };

struct ImageRef {
  ImageKind kind = ImageKind::kNone;
  std::string path;      // kSquashfs: absolute path of the image file
  std::string user;      // kRegistry: optional registry user
  std::string registry;  // kRegistry: "registry-1.docker.io" when none is named
  std::string name;      // kRegistry: "nvidia/pytorch", "library/ubuntu"
  std::string tag;       // kRegistry: "latest" when none is named

  // enroot's file name for an imported reference: "nvidia+pytorch+24.04-py3.sqsh".
  std::string ImportFileName() const;
};

const char* ImageKindName(ImageKind kind);

// Classifies and parses `image` (already expanded). Errors name the value.
Result<ImageRef> ParseImageRef(std::string_view image, std::string_view cwd);

// The error a user sees when an EDF names a registry image: what to run to import it and what to
// write in the EDF instead.
std::string ImportHint(std::string_view image, const ImageRef& ref);

}  // namespace strun::edf
