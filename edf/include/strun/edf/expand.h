// strun/edf/expand.h: variable expansion in EDF string values.
//
// `${VAR}` is replaced by VAR's value and is an error when VAR is undefined; `${VAR:-WORD}` is
// WORD (often empty) when VAR is undefined or empty; `$$` is a literal `$`. A `$` followed by
// anything else is kept as written (the CE documents braces as required).
#pragma once

#include <string>
#include <string_view>

#include "strun/edf/edf.h"
#include "strun/result.h"

namespace strun::edf {

// Expands `value`. `where` names the value in errors, e.g. "/home/u/.edf/a.toml: key 'workdir'".
Result<std::string> ExpandVariables(std::string_view value, const EnvMap& vars,
                                    std::string_view where);

}  // namespace strun::edf
