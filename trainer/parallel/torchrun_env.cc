#include "parallel/torchrun_env.h"

#include <cstdlib>
#include <string>

namespace strun::parallel {
namespace {

Result<int> ParseIntVar(const char* name, const char* value, int min, int max) {
  std::string s = value;
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < min || v > max) {
    return MakeError(std::string("environment variable ") + name + "='" + s +
                     "' is not an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                     "]; set it as torchrun or strun would");
  }
  return static_cast<int>(v);
}

}  // namespace

Result<TorchrunEnv> ReadTorchrunEnv() {
  TorchrunEnv env;
  const char* rank = std::getenv("RANK");
  const char* world = std::getenv("WORLD_SIZE");
  const char* local = std::getenv("LOCAL_RANK");
  const char* addr = std::getenv("MASTER_ADDR");
  const char* port = std::getenv("MASTER_PORT");
  if (!rank && !world) return env;  // not launched by torchrun/strun: one process
  if (!rank || !world) {
    return MakeError(std::string("environment variable ") + (rank ? "WORLD_SIZE" : "RANK") +
                     " is not set but " + (rank ? "RANK" : "WORLD_SIZE") +
                     " is; start strun-train with strun or torchrun, or set RANK, WORLD_SIZE, "
                     "MASTER_ADDR and MASTER_PORT together");
  }
  auto w = ParseIntVar("WORLD_SIZE", world, 1, 1 << 20);
  if (!w) return w.error();
  env.world_size = *w;
  auto r = ParseIntVar("RANK", rank, 0, env.world_size - 1);
  if (!r) return r.error();
  env.rank = *r;
  if (local) {
    auto l = ParseIntVar("LOCAL_RANK", local, 0, 1 << 20);
    if (!l) return l.error();
    env.local_rank = *l;
  } else {
    env.local_rank = env.rank;
  }
  if (env.world_size > 1) {
    if (!addr || !*addr) {
      return MakeError("environment variable MASTER_ADDR is not set (WORLD_SIZE=" +
                       std::to_string(env.world_size) +
                       "); set it to the host of rank 0, as torchrun does");
    }
    if (!port) {
      return MakeError("environment variable MASTER_PORT is not set (WORLD_SIZE=" +
                       std::to_string(env.world_size) +
                       "); set it to a free TCP port on MASTER_ADDR");
    }
  }
  if (addr && *addr) env.master_addr = addr;
  if (port) {
    auto p = ParseIntVar("MASTER_PORT", port, 1, 65535);
    if (!p) return p.error();
    env.master_port = *p;
  }
  return env;
}

}  // namespace strun::parallel
