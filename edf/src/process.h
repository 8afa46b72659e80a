// Internal: running a helper program (tar, mksquashfs, squashfuse) and waiting for it.
#pragma once

#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::edf::internal {

// Runs argv[0] (looked up in PATH) with its output captured; an error carries the exit status
// and the program's last output lines.
Status RunProgram(const std::vector<std::string>& argv);

// Runs argv and returns its standard output (standard error is kept for the error message).
Result<std::string> RunProgramOutput(const std::vector<std::string>& argv);

// Absolute path of `program` in PATH, or "" when absent.
std::string FindProgram(const std::string& program);

}  // namespace strun::edf::internal
