#include "strun/launcher/worker_env.h"

namespace strun::launcher {

std::string PythonExecutable(const EnvMap& env) {
  for (const char* var : {"STRUN_PYTHON", "PYTHON_EXEC"}) {
    auto it = env.find(var);
    if (it != env.end() && !it->second.empty()) return it->second;
  }
  return "python3";
}

std::vector<std::string> WorkerCommand(const LaunchOptions& o, const EnvMap& env) {
  std::vector<std::string> argv;
  if (o.run_path) {
    // torchrun runs the script with runpy.run_path inside its own interpreter; strun does the same
    // inside a fresh one.
    argv = {PythonExecutable(env), "-u", "-c",
            "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], "
            "run_name='__main__')",
            o.training_script};
  } else if (o.no_python) {
    argv = {o.training_script};
  } else {
    argv = {PythonExecutable(env), "-u"};
    if (o.module) argv.push_back("-m");
    argv.push_back(o.training_script);
  }
  argv.insert(argv.end(), o.training_script_args.begin(), o.training_script_args.end());
  return argv;
}

Result<EnvMap> BuildWorkerEnv(const LaunchOptions& o, const LaunchPlan& p, const EnvMap& agent_env,
                              const WorkerIdentity& w, const AttemptInfo& a,
                              const std::string& error_file) {
  EnvMap env = agent_env;
  auto set = [&](const char* k, const std::string& v) { env[k] = v; };
  set("RANK", std::to_string(w.rank));
  set("GROUP_RANK", std::to_string(p.group_rank));
  set("ROLE_RANK", std::to_string(w.rank));
  set("ROLE_NAME", o.role);
  set("LOCAL_WORLD_SIZE", std::to_string(p.local_world_size));
  set("WORLD_SIZE", std::to_string(p.world_size));
  set("GROUP_WORLD_SIZE", std::to_string(p.group_world_size));
  set("ROLE_WORLD_SIZE", std::to_string(p.world_size));
  set("MASTER_ADDR", a.master_addr);
  set("MASTER_PORT", std::to_string(a.master_port));
  set("TORCHELASTIC_RESTART_COUNT", std::to_string(a.restart_count));
  set("TORCHELASTIC_MAX_RESTARTS", std::to_string(o.max_restarts));
  set("TORCHELASTIC_RUN_ID", p.run_id);
  set("TORCHELASTIC_USE_AGENT_STORE", "False");
  set("TORCHELASTIC_SIGNALS_TO_HANDLE", o.signals_to_handle);
  set("TORCHELASTIC_ERROR_FILE", error_file);
  if (!agent_env.count("TORCH_NCCL_ASYNC_ERROR_HANDLING"))
    set("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1");
  if (!agent_env.count("OMP_NUM_THREADS") && p.local_world_size > 1) set("OMP_NUM_THREADS", "1");
  if (o.virtual_local_rank) {
    set("LOCAL_RANK", "0");
    auto it = agent_env.find("CUDA_VISIBLE_DEVICES");
    if (it != agent_env.end()) {
      std::vector<std::string> ids;
      std::string cur;
      for (char c : it->second + ",") {
        if (c == ',') {
          ids.push_back(cur);
          cur.clear();
        } else if (c != ' ') {
          cur.push_back(c);
        }
      }
      if (w.local_rank >= int(ids.size()))
        return MakeError("--virtual-local-rank: local rank " + std::to_string(w.local_rank) +
                         " exceeds the GPUs in CUDA_VISIBLE_DEVICES=" + it->second);
      set("CUDA_VISIBLE_DEVICES", ids[w.local_rank]);
    } else {
      set("CUDA_VISIBLE_DEVICES", std::to_string(w.local_rank));
    }
  } else {
    set("LOCAL_RANK", std::to_string(w.local_rank));
  }
  return env;
}

}  // namespace strun::launcher
