// The worker environment and command: torchrun's contract.
#include "strun/launcher/worker_env.h"

#include <gtest/gtest.h>

namespace strun::launcher {
namespace {

LaunchOptions Opts(std::vector<std::string> args) {
  auto r = ParseCommandLine(args, {});
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : LaunchOptions{};
}

LaunchPlan TwoNodesOfFour() {
  LaunchPlan p;
  p.mode = LaunchMode::kSlurmPerNode;
  p.group_rank = 1;
  p.group_world_size = 2;
  p.local_world_size = 4;
  p.world_size = 8;
  p.num_workers = 4;
  p.first_rank = 4;
  p.run_id = "77";
  return p;
}

TEST(WorkerEnv, TorchrunContract) {
  LaunchOptions o = Opts({"--max-restarts=3", "--role=trainer", "train.py"});
  EnvMap agent = {{"PATH", "/usr/bin"}, {"HOME", "/root"}, {"RANK", "stale"}};
  auto env = BuildWorkerEnv(o, TwoNodesOfFour(), agent, {2, 6}, {1, "10.0.0.1", 41000},
                            "/logs/2/error.json");
  ASSERT_TRUE(env.ok());
  const EnvMap expected = {
      {"PATH", "/usr/bin"},
      {"HOME", "/root"},
      {"RANK", "6"},
      {"LOCAL_RANK", "2"},
      {"WORLD_SIZE", "8"},
      {"LOCAL_WORLD_SIZE", "4"},
      {"GROUP_RANK", "1"},
      {"GROUP_WORLD_SIZE", "2"},
      {"ROLE_RANK", "6"},
      {"ROLE_NAME", "trainer"},
      {"ROLE_WORLD_SIZE", "8"},
      {"MASTER_ADDR", "10.0.0.1"},
      {"MASTER_PORT", "41000"},
      {"TORCHELASTIC_RESTART_COUNT", "1"},
      {"TORCHELASTIC_MAX_RESTARTS", "3"},
      {"TORCHELASTIC_RUN_ID", "77"},
      {"TORCHELASTIC_USE_AGENT_STORE", "False"},
      {"TORCHELASTIC_ERROR_FILE", "/logs/2/error.json"},
      {"TORCHELASTIC_SIGNALS_TO_HANDLE", "SIGTERM,SIGINT,SIGHUP,SIGQUIT"},
      {"TORCH_NCCL_ASYNC_ERROR_HANDLING", "1"},
      {"OMP_NUM_THREADS", "1"},
  };
  EXPECT_EQ(*env, expected);
}

TEST(WorkerEnv, InheritedValuesWin) {
  LaunchOptions o = Opts({"train.py"});
  EnvMap agent = {{"OMP_NUM_THREADS", "8"},
                  {"TORCH_NCCL_ASYNC_ERROR_HANDLING", "3"},
                  {"CUDA_VISIBLE_DEVICES", "4,5"}};
  auto env = BuildWorkerEnv(o, TwoNodesOfFour(), agent, {0, 4}, {0, "a", 1}, "e");
  EXPECT_EQ(env->at("OMP_NUM_THREADS"), "8");
  EXPECT_EQ(env->at("TORCH_NCCL_ASYNC_ERROR_HANDLING"), "3");
  EXPECT_EQ(env->at("CUDA_VISIBLE_DEVICES"), "4,5");
}

TEST(WorkerEnv, NoOmpDefaultForOneLocalWorker) {
  LaunchPlan p = TwoNodesOfFour();
  p.local_world_size = 1;
  auto env = BuildWorkerEnv(Opts({"train.py"}), p, {}, {0, 1}, {0, "a", 1}, "e");
  EXPECT_EQ(env->count("OMP_NUM_THREADS"), 0u);
}

TEST(WorkerEnv, VirtualLocalRank) {
  LaunchOptions o = Opts({"--virtual-local-rank", "train.py"});
  auto env = BuildWorkerEnv(o, TwoNodesOfFour(), {{"CUDA_VISIBLE_DEVICES", "4,5,6,7"}}, {2, 6},
                            {0, "a", 1}, "e");
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->at("LOCAL_RANK"), "0");
  EXPECT_EQ(env->at("CUDA_VISIBLE_DEVICES"), "6");
  env = BuildWorkerEnv(o, TwoNodesOfFour(), {}, {3, 7}, {0, "a", 1}, "e");
  EXPECT_EQ(env->at("CUDA_VISIBLE_DEVICES"), "3");
  auto bad = BuildWorkerEnv(o, TwoNodesOfFour(), {{"CUDA_VISIBLE_DEVICES", "0"}}, {2, 6},
                            {0, "a", 1}, "e");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("CUDA_VISIBLE_DEVICES=0"), std::string::npos);
}

TEST(WorkerCommand, TorchrunForms) {
  EnvMap env;
  EXPECT_EQ(WorkerCommand(Opts({"train.py", "--a", "1"}), env),
            (std::vector<std::string>{"python3", "-u", "train.py", "--a", "1"}));
  EXPECT_EQ(WorkerCommand(Opts({"-m", "pkg.mod", "x"}), env),
            (std::vector<std::string>{"python3", "-u", "-m", "pkg.mod", "x"}));
  EXPECT_EQ(WorkerCommand(Opts({"--no-python", "./bin", "x"}), env),
            (std::vector<std::string>{"./bin", "x"}));
  auto run_path = WorkerCommand(Opts({"--run-path", "--no-python", "/abs/s.py", "x"}), env);
  ASSERT_EQ(run_path.size(), 6u);
  EXPECT_EQ(run_path[0], "python3");
  EXPECT_EQ(run_path[2], "-c");
  EXPECT_NE(run_path[3].find("runpy.run_path"), std::string::npos);
  EXPECT_EQ(run_path[4], "/abs/s.py");
  EXPECT_EQ(run_path[5], "x");
}

TEST(WorkerCommand, PythonResolution) {
  EXPECT_EQ(PythonExecutable({}), "python3");
  EXPECT_EQ(PythonExecutable({{"PYTHON_EXEC", "/opt/py"}}), "/opt/py");
  EXPECT_EQ(PythonExecutable({{"PYTHON_EXEC", "/opt/py"}, {"STRUN_PYTHON", "/usr/bin/python3"}}),
            "/usr/bin/python3");
  EXPECT_EQ(WorkerCommand(Opts({"t.py"}), {{"STRUN_PYTHON", "/usr/bin/python3"}})[0],
            "/usr/bin/python3");
}

}  // namespace
}  // namespace strun::launcher
