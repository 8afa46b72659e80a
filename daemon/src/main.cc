// strund: the job supervisor. See include/strun/daemon/*.h and README.md.
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "strun/daemon/options.h"
#include "strun/daemon/supervisor.h"
#include "strun/environment.h"

int main(int argc, char** argv) {
  using namespace strun::daemon;
  const std::vector<std::string> args(argv + 1, argv + argc);
  auto options = ParseDaemonCommandLine(args);
  if (!options) {
    std::fprintf(stderr, "strund: error: %s\n(see strund --help)\n",
                 options.error().message.c_str());
    return kExitUsage;
  }
  if (options->help) {
    std::fputs(DaemonUsage().c_str(), stdout);
    return kExitDone;
  }
  return RunSupervisor(*options, strun::ProcessEnvironment());
}
