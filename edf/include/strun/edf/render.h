// strun/edf/render.h: printing a resolved EDF, as `strun-edf render` does.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "strun/edf/edf.h"

namespace strun::edf {

// The resolved EDF as TOML that LoadEnvironment reads back to the same Edf (annotations as
// quoted dotted keys, mounts in their normal form).
std::string RenderToml(const Edf& edf);

// The resolved EDF as JSON, with the image's kind and the files it was merged from.
nlohmann::json RenderJson(const Edf& edf);

}  // namespace strun::edf
