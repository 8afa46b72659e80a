// strund: the job supervisor. See include/strun/daemon/*.h and README.md.
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "strun/daemon/options.h"
#include "strun/daemon/supervisor.h"

extern char** environ;

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
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq) env.emplace(std::string(*e, size_t(eq - *e)), std::string(eq + 1));
  }
  return RunSupervisor(*options, env);
}
