#include "integration/torch_job.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

namespace strun::testing {

std::map<int, RankRecord> ReadRecords(const std::string& dir, const std::string& prefix) {
  std::map<int, RankRecord> records;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename();
    if (name.rfind(prefix, 0) != 0 || name.size() < 6 || name.substr(name.size() - 5) != ".json")
      continue;
    std::string middle = name.substr(prefix.size(), name.size() - prefix.size() - 5);
    if (middle.empty() || middle.find_first_not_of("0123456789") != std::string::npos) continue;
    auto j = nlohmann::json::parse(ReadFileOr(entry.path()), nullptr, false);
    if (j.is_discarded()) continue;
    RankRecord r;
    r.rank = j.value("rank", -1);
    r.local_rank = j.value("local_rank", -1);
    r.world_size = j.value("world_size", 0);
    r.local_world_size = j.value("local_world_size", 0);
    r.group_rank = j.value("group_rank", -1);
    r.group_world_size = j.value("group_world_size", 0);
    r.node = j.value("node", "");
    r.master_addr = j.value("master_addr", "");
    r.master_port = j.value("master_port", 0);
    r.restart_count = j.value("restart_count", -1);
    r.max_restarts = j.value("max_restarts", -1);
    r.run_id = j.value("run_id", "");
    r.pid = j.value("pid", 0);
    if (j.contains("slurm_job_id") && j["slurm_job_id"].is_string())
      r.slurm_job_id = j["slurm_job_id"];
    if (j.contains("pmix_rank") && j["pmix_rank"].is_string()) r.pmix_rank = j["pmix_rank"];
    r.usr1 = j.value("usr1", 0);
    records[std::stoi(middle)] = r;
  }
  return records;
}

std::string FreshDir(const std::string& path) {
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  chmod(path.c_str(), 01777);
  return path;
}

Env TorchEnv(const std::string& check_dir) {
  return {{"STRUN_PYTHON", "/usr/bin/python3"},
          {"CHECK_DIR", check_dir},
          {"PYTHONDONTWRITEBYTECODE", "1"}};
}

int CountOkLines(const std::string& output) {
  int n = 0;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line))
    if (line.find("all_reduce") != std::string::npos && line.size() >= 2 &&
        line.substr(line.size() - 2) == "ok")
      ++n;
  return n;
}

bool ProcessAlive(int pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  std::string stat = ReadFileOr("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

}  // namespace strun::testing
