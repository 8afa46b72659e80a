// Job secrets and the ports the service may use (coord_service.h).
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "strun/launcher/coord_service.h"
#include "strun/launcher/crypto.h"

namespace strun::launcher {
namespace {

std::string Get(const EnvMap& env, const char* name) {
  auto it = env.find(name);
  return it == env.end() ? std::string() : it->second;
}

Result<std::string> ReadUserSecret(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return MakeError("cannot open the strun secret file " + path + ": " + std::strerror(errno));
  struct stat st;
  fstat(fd, &st);
  if (st.st_uid != getuid() || (st.st_mode & 077) != 0) {
    close(fd);
    return MakeError("the strun secret file " + path +
                     " must belong to you and be readable by you only; run: chmod 600 " + path);
  }
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n < 16)
    return MakeError("the strun secret file " + path +
                     " is too short (16 bytes at least); delete it to get a new one");
  return std::string(buf, size_t(n));
}

Result<std::string> UserSecret(const EnvMap& env) {
  std::string path = Get(env, "STRUN_SECRET_FILE");
  if (path.empty()) {
    std::string home = Get(env, "HOME");
    if (home.empty()) {
      if (passwd* pw = getpwuid(getuid())) home = pw->pw_dir;
    }
    if (home.empty())
      return MakeError(
          "no secret for the strun coordination service: set STRUN_JOB_SECRET or STRUN_SECRET_FILE "
          "(HOME is unset)");
    std::string dir = home + "/.strun";
    mkdir(dir.c_str(), 0700);
    path = dir + "/secret";
  }
  if (access(path.c_str(), F_OK) != 0) {
    // Created once and atomically (link() fails if another node or task created it first), so that
    // every agent of every node sharing the home directory reads the same secret.
    auto secret = NewJobSecret();
    if (!secret) return secret.error();
    char host[256] = "host";
    gethostname(host, sizeof host - 1);
    std::string tmp = path + ".tmp." + host + "." + std::to_string(getpid());
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
      return MakeError("cannot create the strun secret file " + tmp + ": " + std::strerror(errno) +
                       "; set STRUN_JOB_SECRET or STRUN_SECRET_FILE");
    std::string hex = *secret + "\n";
    bool ok = write(fd, hex.data(), hex.size()) == ssize_t(hex.size());
    ok = fsync(fd) == 0 && ok;
    close(fd);
    if (ok && link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) ok = false;
    unlink(tmp.c_str());
    if (!ok)
      return MakeError("cannot create the strun secret file " + path +
                       "; set STRUN_JOB_SECRET or STRUN_SECRET_FILE");
  }
  return ReadUserSecret(path);
}

}  // namespace

Result<std::string> NewJobSecret() {
  auto bytes = RandomBytes(32);
  if (!bytes) return bytes.error();
  return ToHex(*bytes);
}

std::string DeriveCoordinationKey(const std::string& secret, const std::string& run_key) {
  return DigestBytes(HmacSha256(secret, "strun-coordination-v1|" + run_key));
}

Result<std::string> JobSecret(const EnvMap& env, const std::string& agreed) {
  // An explicit job secret (strund or the batch script sets it for every task) wins over the one
  // agreed through PMIx, so that a service hosted outside the step can still authenticate agents.
  std::string secret = Get(env, "STRUN_JOB_SECRET");
  if (secret.empty()) secret = agreed;
  if (secret.empty()) return UserSecret(env);
  return secret;
}

std::vector<int> CandidatePorts(const std::string& key, const EnvMap& env,
                                std::optional<int> fixed_port) {
  std::string fixed = Get(env, "STRUN_COORD_PORT");
  if (!fixed.empty()) {
    int p = std::atoi(fixed.c_str());
    if (p > 0 && p < 65536) return {p};
  }
  if (fixed_port) return {*fixed_port};
  std::vector<int> ports;
  for (int i = 0; i < 16; ++i) {
    Digest d = HmacSha256(key, "port|" + std::to_string(i));
    uint32_t v = uint32_t(d[0]) << 24 | uint32_t(d[1]) << 16 | uint32_t(d[2]) << 8 | d[3];
    int p = 20000 + int(v % 12000);
    if (std::find(ports.begin(), ports.end(), p) == ports.end()) ports.push_back(p);
  }
  return ports;
}

}  // namespace strun::launcher
