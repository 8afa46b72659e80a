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

// Writes all of `s` to `fd`, retrying on EINTR; stops silently at the first real error (the reader
// then sees a short message).
void WriteAll(int fd, const std::string& s);
// Reads `fd` to end of file, retrying on EINTR.
std::string ReadAll(int fd);

// Absolute path of `program` in PATH, or "" when absent.
std::string FindProgram(const std::string& program);

}  // namespace strun::edf::internal
