// strun/edf/import.h: turning a root file system or an image archive into a squashfs image.
//
// strun does not pull from registries. Images arrive as a directory holding a root file system, or
// as an archive written by `podman save` / `docker save` (docker-archive, with manifest.json) or
// `podman save --format oci-archive` (OCI layout, with index.json). Archive layers are applied in
// order with their whiteouts honoured (`.wh.NAME` deletes NAME, `.wh..wh..opq` empties the
// directory of what lower layers put there), and the image's environment, working directory and
// entrypoint are written as enroot does (/etc/environment, /etc/rc), so images imported by enroot
// and by strun behave the same. The squashfs file is written with mksquashfs.
#pragma once

#include <string>

#include "strun/result.h"

namespace strun::edf {

struct ImportOptions {
  std::string source;  // directory, or .tar archive
  std::string output;  // .sqsh file; "" picks enroot's name from the archive's tag (or the
                       // directory's name)
};

// Imports and returns the path of the written image. Refuses to overwrite an existing file.
Result<std::string> ImportImage(const ImportOptions& opts);

}  // namespace strun::edf
