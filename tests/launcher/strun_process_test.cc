// strun as a user runs it: real processes, real signals, real files. Workers are shell scripts
// (fast); the PyTorch tests live in strun_torch_test.cc.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "launcher_test_util.h"

namespace strun::launcher {
namespace {

TEST(StrunProcess, SuccessAndPrefixedOutput) {
  TempDir d;
  auto r = RunStrun({"--standalone", "--nproc-per-node=3", "--no-python", "sh", "-c",
                     "echo out rank=$RANK lws=$LOCAL_WORLD_SIZE; echo err >&2"},
                    d);
  EXPECT_EQ(r.rc, 0) << r.err;
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(
        r.out.find("[default" + std::to_string(i) + "]:out rank=" + std::to_string(i) + " lws=3"),
        std::string::npos)
        << r.out;
    EXPECT_NE(r.err.find("[default" + std::to_string(i) + "]:err"), std::string::npos) << r.err;
  }
}

TEST(StrunProcess, DefaultCommandIsPythonUnbuffered) {
  TempDir d;
  auto r = RunStrun({"--nproc-per-node=1", "script.py", "--flag", "x"}, d,
                    {{"STRUN_PYTHON", "/bin/echo"}});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("[default0]:-u script.py --flag x"), std::string::npos) << r.out;
  r = RunStrun({"-m", "pkg.mod"}, d, {{"STRUN_PYTHON", "/bin/echo"}});
  EXPECT_NE(r.out.find("[default0]:-u -m pkg.mod"), std::string::npos) << r.out;
}

TEST(StrunProcess, ExitCodeIsTheFailingWorkers) {
  TempDir d;
  auto r = RunStrun({"--nproc-per-node=2", "--no-python", "sh", "-c",
                     "if [ $RANK = 1 ]; then echo about to fail >&2; exit 7; fi; sleep 5"},
                    d);
  EXPECT_EQ(r.rc, 7);
  EXPECT_NE(r.err.find("rank      : 1 (local_rank: 1)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("exitcode  : 7"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("    about to fail"), std::string::npos) << r.err;  // last output lines
  r = RunStrun({"--nproc-per-node=2", "--no-python", "sh", "-c",
                "if [ $RANK = 0 ]; then kill -SEGV $$; fi; sleep 5"},
               d);
  EXPECT_EQ(r.rc, 128 + SIGSEGV) << r.err;
  EXPECT_NE(r.err.find("SIGSEGV"), std::string::npos) << r.err;
}

TEST(StrunProcess, RestartsUntilTheBudgetIsSpent) {
  TempDir d;
  const std::string logs = d.path() + "/logs";
  auto r = RunStrun(
      {"--nproc-per-node=2", "--max-restarts=2", "--log-dir", logs, "--no-python", "sh", "-c",
       "echo attempt=$TORCHELASTIC_RESTART_COUNT max=$TORCHELASTIC_MAX_RESTARTS; "
       "if [ $RANK = 1 ]; then sleep 0.3; exit 3; fi; sleep 5"},
      d);
  EXPECT_EQ(r.rc, 3) << r.err;
  for (int a = 0; a <= 2; ++a)
    EXPECT_NE(r.out.find("[default0]:attempt=" + std::to_string(a) + " max=2"), std::string::npos)
        << r.out;
  EXPECT_EQ(r.out.find("attempt=3"), std::string::npos);
  std::string run_dir = OnlyEntry(logs);
  ASSERT_FALSE(run_dir.empty());
  for (int a = 0; a <= 2; ++a)
    for (int lr = 0; lr < 2; ++lr)
      EXPECT_TRUE(
          IsDir(logs + "/" + run_dir + "/attempt_" + std::to_string(a) + "/" + std::to_string(lr)));
}

TEST(StrunProcess, FailOnceThenSucceed) {
  TempDir d;
  auto r = RunStrun(
      {"--nproc-per-node=2", "--max-restarts=1", "--no-python", "sh", "-c",
       "if [ $RANK = 1 ] && [ $TORCHELASTIC_RESTART_COUNT = 0 ]; then exit 3; fi; echo ok=$RANK"},
      d);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("[default1]:ok=1"), std::string::npos);
  EXPECT_NE(r.err.find("restarting the worker group (restart 1 of 1)"), std::string::npos) << r.err;
}

// Progress channel (progress.h): a stopped worker is declared hung, killed and the group restarts;
// the restarted group runs to the end.
TEST(StrunProcess, HungWorkerIsKilledAndTheGroupRestarts) {
  TempDir d;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = RunStrun({"--nproc-per-node=2", "--max-restarts=1", "--hang-timeout-floor=0.5",
                     "--no-python", "bash", "-c",
                     "echo '{\"phase\": \"startup\"}' >&$STRUN_PROGRESS_FD; "
                     "for i in 1 2 3 4 5 6; do sleep 0.05; printf '{\"phase\": \"training\", "
                     "\"step\": %d}\\n' $i "
                     ">&$STRUN_PROGRESS_FD; "
                     "if [ $RANK = 1 ] && [ $i = 3 ] && [ $TORCHELASTIC_RESTART_COUNT = 0 ]; then "
                     "kill -STOP $$; fi; "
                     "done; echo done=$RANK.$TORCHELASTIC_RESTART_COUNT"},
                    d);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("rank 1 is hung: no progress report for"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("last step 3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("process stopped"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("[default1]:done=1.1"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("done=1.0"), std::string::npos) << r.out;
  EXPECT_LT(secs, 10) << r.err;  // the floor (0.5 s) applies, not the 900 s start-up timeout
}

// A worker that never reports is never declared hung, however long it is quiet.
TEST(StrunProcess, SilentWorkerIsNotAHang) {
  TempDir d;
  auto r = RunStrun({"--nproc-per-node=1", "--hang-timeout=0.2", "--no-python", "sh", "-c",
                     "test -n \"$STRUN_PROGRESS_FD\" && sleep 1 && echo quiet-ok"},
                    d);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("quiet-ok"), std::string::npos) << r.out;
}

// A failure that repeats at one step without progress stops the job despite restarts left.
TEST(StrunProcess, RepeatedFailureAtOneStepStops) {
  TempDir d;
  auto r = RunStrun({"--nproc-per-node=1", "--max-restarts=5", "--restart-backoff=0.1",
                     "--no-python", "bash", "-c",
                     "for i in 1 2 3; do printf '{\"phase\": \"training\", \"step\": %d}\\n' $i "
                     ">&$STRUN_PROGRESS_FD; "
                     "done; exit 4"},
                    d);
  EXPECT_EQ(r.rc, 4) << r.err;
  EXPECT_NE(r.err.find("failed 2 times at step 3"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("restart 2 of 5"), std::string::npos) << r.err;
}

TEST(StrunProcess, RedirectsTeeFilterAndErrorFiles) {
  TempDir d;
  const std::string logs = d.path() + "/logs";
  const std::string parent = d.path() + "/parent_error.json";
  auto r = RunStrun(
      {"--nproc-per-node=3", "--log-dir=" + logs, "-r", "1", "-t", "2", "--local-ranks-filter=0,2",
       "--no-python", "sh", "-c",
       "echo to-stdout-$RANK; echo to-stderr-$RANK >&2; "
       "if [ $RANK = 2 ]; then printf '{\"message\": {\"message\": \"ValueError: bad\", "
       "\"extraInfo\": "
       "{\"py_callstack\": \"Traceback: ValueError: bad\", \"timestamp\": \"1700000000\"}}}' > "
       "$TORCHELASTIC_ERROR_FILE; sleep 1; exit 5; fi; sleep 5"},  // (the others print first)
      d, {{"TORCHELASTIC_ERROR_FILE", parent}});
  EXPECT_EQ(r.rc, 5) << r.err;
  EXPECT_EQ(r.out.find("to-stdout"), std::string::npos) << r.out;  // -r 1: stdout to files only
  EXPECT_NE(r.err.find("[default0]:to-stderr-0"), std::string::npos) << r.err;  // -t 2: stderr teed
  EXPECT_EQ(r.err.find("[default1]:"), std::string::npos) << r.err;             // filtered out
  EXPECT_NE(r.err.find("Traceback: ValueError: bad"), std::string::npos) << r.err;
  std::string attempt = logs + "/" + OnlyEntry(logs) + "/attempt_0";
  EXPECT_EQ(Slurp(attempt + "/1/stdout.log"), "to-stdout-1\n");
  EXPECT_EQ(Slurp(attempt + "/1/stderr.log"), "to-stderr-1\n");
  EXPECT_NE(Slurp(attempt + "/2/error.json").find("ValueError"), std::string::npos);
  std::string copied = Slurp(parent);
  EXPECT_NE(copied.find("\"errorCode\":5"), std::string::npos) << copied;
  EXPECT_NE(copied.find("ValueError: bad"), std::string::npos) << copied;
}

TEST(StrunProcess, CannotRunWorkerIsAClearError) {
  TempDir d;
  auto r = RunStrun({"--no-python", "/nonexistent/worker"}, d);
  EXPECT_EQ(r.rc, 127);
  EXPECT_NE(r.err.find("cannot run '/nonexistent/worker'"), std::string::npos) << r.err;
  r = RunStrun({"--nnodes=0", "x.py"}, d);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("strun: error:"), std::string::npos);
}

TEST(StrunProcess, UsageErrorsExit2AndHelpExits0) {
  TempDir d;
  auto r = RunStrun({"--bogus", "x.py"}, d);
  EXPECT_EQ(r.rc, 2);
  EXPECT_EQ(r.err, "strun: error: unrecognized arguments: --bogus\n(see strun --help)\n");
  EXPECT_EQ(r.out, "");
  r = RunStrun({"--max_restarts", "x", "x.py"}, d);
  EXPECT_EQ(r.rc, 2);
  EXPECT_EQ(r.err,
            "strun: error: argument --max-restarts: invalid int value: 'x'\n(see strun --help)\n");
  for (const std::string h : {"-h", "--help", "--he"}) {
    r = RunStrun({h}, d);
    EXPECT_EQ(r.rc, 0) << h;
    EXPECT_EQ(r.out.rfind("usage: strun [-h] [--nnodes NNODES]", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("; 2 for\ncommand-line errors; 1 for other launcher errors.\n"),
              std::string::npos)
        << r.out;
    EXPECT_EQ(r.err, "");
  }
}

TEST(StrunProcess, NoOrphansWhenStrunIsKilled) {
  TempDir d;
  const std::string marker = "4242.1" + std::to_string(getpid());
  // The marker is only in the workers' command lines (strun's own has $M).
  pid_t pid = StartStrun({"--nproc-per-node=2", "--no-python", "sh", "-c",
                          "sleep $M & sh -c 'sleep $M' & sleep $M; wait"},
                         d, {{"M", marker}});
  ASSERT_TRUE(WaitFor([&] { return CountProcesses(marker) >= 6; }, 10));
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  EXPECT_TRUE(WaitFor([&] { return CountProcesses(marker) == 0; }, 5))
      << CountProcesses(marker) << " left";
}

// A worker's descendants that leave its process group (setsid, also twice removed) end with
// strun's normal exit: through strun's cgroup and, with STRUN_CGROUP=0, the child subreaper alone.
TEST(StrunProcess, NoDescendantSurvivesANormalExit) {
  for (const std::string cgroup : {"1", "0"}) {
    TempDir d;
    const std::string marker = "4246.1" + std::to_string(getpid()) + cgroup;
    auto r =
        RunStrun({"--nproc-per-node=2", "--no-python", "sh", "-c",
                  "setsid sleep $M & setsid sh -c 'sleep $M & sleep $M' & sleep 1; echo started"},
                 d, {{"M", marker}, {"STRUN_CGROUP", cgroup}});
    EXPECT_EQ(r.rc, 0) << r.err;
    EXPECT_NE(r.out.find("[default1]:started"), std::string::npos) << r.out;
    EXPECT_EQ(CountProcesses(marker), 0) << "left behind with STRUN_CGROUP=" << cgroup;
  }
}

// The same after `kill -9 strun`: the guardian empties strun's cgroup (process.h: without a
// cgroup of its own a descendant that left its group survives, so the test needs one).
TEST(StrunProcess, NoDescendantSurvivesKillMinus9) {
  TempDir d;
  const std::string marker = "4247.1" + std::to_string(getpid());
  pid_t pid = StartStrun({"--nproc-per-node=2", "--no-python", "sh", "-c",
                          "setsid sleep $M & setsid sh -c 'sleep $M & sleep $M' & sleep $M; wait"},
                         d, {{"M", marker}, {"STRUN_VERBOSE", "1"}});
  const bool started = WaitFor([&] { return CountProcesses(marker) >= 8; }, 10);
  const std::string err = Slurp(d.path() + "/strun.err");
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(started) << CountProcesses(marker) << " of 8 processes started\n" << err;
  if (err.find("no cgroup of its own") != std::string::npos) {
    WaitFor([&] { return CountProcesses(marker) == 0; },
            2);  // leaves what survived for the next run's count
    GTEST_SKIP() << "strun cannot create a cgroup here: " << err;
  }
  EXPECT_TRUE(WaitFor([&] { return CountProcesses(marker) == 0; }, 5))
      << CountProcesses(marker) << " left";
}

TEST(StrunProcess, TermStopsWorkersAndExits128PlusSignal) {
  TempDir d;
  const std::string marker = "4243.1" + std::to_string(getpid());
  pid_t pid =
      StartStrun({"--nproc-per-node=2", "--no-python", "sh", "-c", "sleep $M"}, d, {{"M", marker}});
  ASSERT_TRUE(WaitFor([&] { return CountProcesses(marker) >= 2; }, 10));
  kill(pid, SIGTERM);
  int st;
  waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 128 + SIGTERM);
  EXPECT_EQ(CountProcesses(marker), 0);
}

TEST(StrunProcess, ShutdownTimeoutEscalatesToSigkill) {
  TempDir d;
  const std::string marker = "4244.1" + std::to_string(getpid());
  pid_t pid = StartStrun({"--nproc-per-node=1", "--shutdown-timeout=1", "--no-python", "sh", "-c",
                          "trap '' TERM; sleep $M"},
                         d, {{"M", marker}});
  ASSERT_TRUE(WaitFor([&] { return CountProcesses(marker) >= 1; }, 10));
  auto t0 = std::chrono::steady_clock::now();
  kill(pid, SIGTERM);
  int st;
  waitpid(pid, &st, 0);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(WEXITSTATUS(st), 128 + SIGTERM);
  EXPECT_GE(s, 0.9);
  EXPECT_LT(s, 5.0);
  EXPECT_EQ(CountProcesses(marker), 0);
}

TEST(StrunProcess, Usr1IsForwardedAndWorkersKeepRunning) {
  TempDir d;
  const std::string done = d.path() + "/done";
  pid_t pid =
      StartStrun({"--nproc-per-node=2", "--signals-to-handle=SIGTERM,SIGINT,SIGUSR1", "--no-python",
                  "sh", "-c",
                  "trap 'echo got-usr1-$RANK > " + d.path() + "/usr1-$RANK' USR1; echo up > " +
                      d.path() + "/up-$RANK; while [ ! -f " + done + " ]; do sleep 0.05; done"},
                 d);
  ASSERT_TRUE(
      WaitFor([&] { return IsFile(d.path() + "/up-0") && IsFile(d.path() + "/up-1"); }, 10));
  kill(pid, SIGUSR1);
  EXPECT_TRUE(
      WaitFor([&] { return IsFile(d.path() + "/usr1-0") && IsFile(d.path() + "/usr1-1"); }, 5));
  std::ofstream(done) << "x";
  int st;
  waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(StrunProcess, TwoAgentsRestartTogether) {
  TempDir d;
  const std::map<std::string, std::string> env = {{"STRUN_SECRET_FILE", d.path() + "/secret"}};
  const std::string script =
      "echo node=$GROUP_RANK rank=$RANK restart=$TORCHELASTIC_RESTART_COUNT port=$MASTER_PORT; "
      "if [ $RANK = 3 ] && [ $TORCHELASTIC_RESTART_COUNT = 0 ]; then sleep 0.5; exit 9; fi; sleep "
      "0.3";
  const std::string id = "--rdzv-id=two-agents-" + std::to_string(getpid());
  pid_t n1 = StartStrun({"--nnodes=2", "--node-rank=1", "--nproc-per-node=2", "--max-restarts=1",
                         id, "--no-python", "sh", "-c", script},
                        d, env, "n1");
  auto r0 = RunStrun({"--nnodes=2", "--node-rank=0", "--nproc-per-node=2", "--max-restarts=1", id,
                      "--no-python", "sh", "-c", script},
                     d, env);
  int st;
  waitpid(n1, &st, 0);
  EXPECT_EQ(r0.rc, 0) << r0.err;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  std::string out1 = Slurp(d.path() + "/n1.out");
  // Both nodes ran both attempts; ranks 0-1 on node 0, 2-3 on node 1; one port per attempt.
  for (int rank = 0; rank < 4; ++rank) {
    const std::string& out = rank < 2 ? r0.out : out1;
    for (int a = 0; a < 2; ++a)
      EXPECT_NE(out.find("node=" + std::to_string(rank / 2) + " rank=" + std::to_string(rank) +
                         " restart=" + std::to_string(a)),
                std::string::npos)
          << out;
  }
  std::smatch m0, m1;
  std::regex port_re("rank=0 restart=1 port=(\\d+)");
  std::regex port_re1("rank=2 restart=1 port=(\\d+)");
  ASSERT_TRUE(std::regex_search(r0.out, m0, port_re));
  ASSERT_TRUE(std::regex_search(out1, m1, port_re1));
  EXPECT_EQ(m0[1], m1[1]);
}

namespace {
int FreeTcpPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

// Holds `n` connections to 127.0.0.1:port without ever authenticating, reopening each one the
// service closes, until stopped.
class ConnectionFlood {
 public:
  ConnectionFlood(int port, size_t n) : fds_(n, -1) {
    thread_ = std::thread([this, port] {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(uint16_t(port));
      while (!stop_) {
        int reopened = 0;
        for (int& fd : fds_) {
          if (fd >= 0) {
            char buf[256];
            ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)) {
              close(fd);
              fd = -1;
            }
          }
          if (fd < 0 && reopened < 200) {  // bounded churn on a small machine
            fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd >= 0) (void)!connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
            ++reopened;
            ++opened_;
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      for (int fd : fds_)
        if (fd >= 0) close(fd);
    });
  }
  ~ConnectionFlood() {
    stop_ = true;
    thread_.join();
  }
  size_t opened() const { return opened_; }

 private:
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> opened_{0};
  std::thread thread_;
};
}  // namespace

// Someone without the secret holds over 1000 idle connections to agent 0's coordination port
// while the group restarts, with strun under `ulimit -n 1024` (soft and hard): the restart still
// finds its pipes and the job completes.
TEST(StrunProcess, ConnectionFloodDoesNotBreakARestart) {
  rlimit own{};
  getrlimit(RLIMIT_NOFILE, &own);
  if (own.rlim_max < 4096) GTEST_SKIP() << "the flood needs 4096 descriptors in the test";
  rlimit raised = own;
  raised.rlim_cur = own.rlim_max;
  setrlimit(RLIMIT_NOFILE, &raised);
  TempDir d;
  const int port = FreeTcpPort();
  ASSERT_GT(port, 0);
  const std::string go = d.path() + "/go";
  const std::map<std::string, std::string> env = {{"STRUN_SECRET_FILE", d.path() + "/secret"},
                                                  {"STRUN_COORD_PORT", std::to_string(port)}};
  const std::string script =
      "echo up rank=$RANK restart=$TORCHELASTIC_RESTART_COUNT; "
      "if [ $TORCHELASTIC_RESTART_COUNT = 0 ]; then while [ ! -f " +
      go +
      " ]; do sleep 0.05; done; if [ $RANK = 3 ]; then exit 9; fi; sleep 30; fi; echo done "
      "rank=$RANK";
  const std::string id = "--rdzv-id=flood-" + std::to_string(getpid());
  auto ulimit_1024 = [] {
    rlimit r{1024, 1024};
    setrlimit(RLIMIT_NOFILE, &r);
  };
  pid_t n[2];
  for (int node = 0; node < 2; ++node)
    n[node] = StartStrun({"--nnodes=2", "--node-rank=" + std::to_string(node), "--nproc-per-node=2",
                          "--max-restarts=1", id, "--no-python", "sh", "-c", script},
                         d, env, "n" + std::to_string(node), ulimit_1024);
  const bool up = WaitFor(
      [&] {
        const std::string out = Slurp(d.path() + "/n0.out") + Slurp(d.path() + "/n1.out");
        for (int r = 0; r < 4; ++r)
          if (out.find("up rank=" + std::to_string(r) + " restart=0") == std::string::npos)
            return false;
        return true;
      },
      20);
  {
    ConnectionFlood flood(port, 1100);
    if (up) {
      EXPECT_TRUE(WaitFor([&] { return flood.opened() >= 1100; }, 10));
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // agent 0 accepts what it will
      std::ofstream(go) << "x";
    }
    int st[2];
    for (int node = 0; node < 2; ++node) {
      if (!up) kill(n[node], SIGKILL);
      bool done =
          WaitFor([&] { return waitpid(n[node], &st[node], WNOHANG) == n[node]; }, up ? 60 : 5);
      if (!done) {
        kill(n[node], SIGKILL);
        waitpid(n[node], &st[node], 0);
      }
    }
    ASSERT_TRUE(up) << Slurp(d.path() + "/n0.err");
    for (int node = 0; node < 2; ++node)
      EXPECT_TRUE(WIFEXITED(st[node]) && WEXITSTATUS(st[node]) == 0)
          << "node " << node << ": " << Slurp(d.path() + "/n" + std::to_string(node) + ".err");
  }
  const std::string out = Slurp(d.path() + "/n0.out") + Slurp(d.path() + "/n1.out");
  for (int r = 0; r < 4; ++r)
    EXPECT_NE(out.find("done rank=" + std::to_string(r)), std::string::npos) << out;
  setrlimit(RLIMIT_NOFILE, &own);
}

TEST(StrunProcess, LostAgentStopsTheOtherNode) {
  TempDir d;
  const std::string marker = "4245.1" + std::to_string(getpid());
  const std::map<std::string, std::string> env = {{"STRUN_SECRET_FILE", d.path() + "/secret"},
                                                  {"M", marker}};
  const std::string id = "--rdzv-id=lost-agent-" + std::to_string(getpid());
  pid_t n0 = StartStrun({"--nnodes=2", "--node-rank=0", "--nproc-per-node=1", id, "--no-python",
                         "sh", "-c", "sleep $M"},
                        d, env, "n0");
  pid_t n1 = StartStrun({"--nnodes=2", "--node-rank=1", "--nproc-per-node=1", id, "--no-python",
                         "sh", "-c", "sleep $M"},
                        d, env, "n1");
  ASSERT_TRUE(WaitFor([&] { return CountProcesses(marker) >= 2; }, 10));
  kill(n1, SIGKILL);
  int st;
  waitpid(n1, &st, 0);
  waitpid(n0, &st, 0);
  EXPECT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 1);
  EXPECT_NE(Slurp(d.path() + "/n0.err").find("lost the connection to strun agent 1"),
            std::string::npos)
      << Slurp(d.path() + "/n0.err");
  EXPECT_TRUE(WaitFor([&] { return CountProcesses(marker) == 0; }, 5));
}

TEST(StrunProcess, MissingAgentTimesOutWithAClearError) {
  TempDir d;
  auto r = RunStrun({"--nnodes=2", "--node-rank=0", "--rdzv-conf=join_timeout=1",
                     "--rdzv-id=alone-" + std::to_string(getpid()), "--no-python", "true"},
                    d, {{"STRUN_SECRET_FILE", d.path() + "/secret"}}, 30);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("only 1 of 2 strun agents joined in time (missing agents: 1)"),
            std::string::npos)
      << r.err;
}

TEST(StrunProcess, SecondJobOnTheSameNodeDoesNotCollide) {
  TempDir d;
  const std::map<std::string, std::string> env = {{"STRUN_SECRET_FILE", d.path() + "/secret"}};
  std::vector<pid_t> pids;
  for (int job = 0; job < 2; ++job)
    for (int node = 0; node < 2; ++node)
      pids.push_back(
          StartStrun({"--nnodes=2", "--node-rank=" + std::to_string(node), "--nproc-per-node=1",
                      "--rdzv-id=job" + std::to_string(job) + "-" + std::to_string(getpid()),
                      "--no-python", "sh", "-c", "echo job port=$MASTER_PORT; sleep 0.2"},
                     d, env, "j" + std::to_string(job) + "n" + std::to_string(node)));
  for (pid_t p : pids) {
    int st;
    waitpid(p, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  std::smatch a, b;
  std::string o0 = Slurp(d.path() + "/j0n0.out"), o1 = Slurp(d.path() + "/j1n0.out");
  ASSERT_TRUE(std::regex_search(o0, a, std::regex("port=(\\d+)")));
  ASSERT_TRUE(std::regex_search(o1, b, std::regex("port=(\\d+)")));
  EXPECT_NE(a[1], b[1]);
}

}  // namespace
}  // namespace strun::launcher
