// Every program exits 2 for a usage error and 0 for --help, as their --help texts say (and 1 for
// other errors). Programs not built in this configuration are skipped.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

struct Run {
  int rc = -1;
  std::string output;  // stdout and stderr
};

Run RunProgram(const std::string& program, const std::string& args) {
  Run r;
  FILE* p = popen(("'" + program + "' " + args + " 2>&1 </dev/null").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

// args -> the text the error must contain.
void ExpectUsageErrors(const char* program,
                       const std::vector<std::pair<std::string, std::string>>& cases) {
  if (std::string(program).empty() || access(program, X_OK) != 0)
    GTEST_SKIP() << "not built in this configuration (or not yet: strun-train is no dependency)";
  EXPECT_EQ(RunProgram(program, "--help").rc, 0);
  for (const auto& [args, text] : cases) {
    Run r = RunProgram(program, args);
    EXPECT_EQ(r.rc, 2) << program << " " << args << ":\n" << r.output;
    EXPECT_NE(r.output.find(text), std::string::npos) << program << " " << args << ":\n"
                                                      << r.output;
  }
}

#ifndef STRUN_EXE
#define STRUN_EXE ""
#endif
#ifndef STRUND_EXE
#define STRUND_EXE ""
#endif
#ifndef STRUN_HOSTLIST_EXE
#define STRUN_HOSTLIST_EXE ""
#endif
#ifndef STRUN_EDF_EXE
#define STRUN_EDF_EXE ""
#endif
#ifndef STRUN_TRAIN_EXE
#define STRUN_TRAIN_EXE ""
#endif

TEST(UsageExitCode, Strun) {
  ExpectUsageErrors(STRUN_EXE,
                    {
                        {"--bogus x.py", "unrecognized arguments: --bogus"},
                        {"--standalone --nproc-per-node=99999999 x.py", "more than 1024 workers"},
                        {"--standalone --nproc-per-node=abc x.py", "--nproc-per-node=abc"},
                        {"--standalone --nnodes=2 x.py", "--standalone runs one node on its own"},
                        {"--nnodes=2 --node-rank=5 x.py", "--node-rank=5 but --nnodes=2"},
                    });
}

TEST(UsageExitCode, Strund) {
  ExpectUsageErrors(STRUND_EXE, {
                                    {"--bogus -- srun strun x.py", "unknown option '--bogus'"},
                                    {"--nodes 0 -- srun strun x.py", "--nodes 0"},
                                    {"--max-restarts", "--max-restarts"},
                                });
}

TEST(UsageExitCode, StrunHostlist) {
  ExpectUsageErrors(STRUN_HOSTLIST_EXE, {
                                            {"", "missing command"},
                                            {"frobnicate x", "unknown command"},
                                            {"expand", "exactly one host list"},
                                        });
}

TEST(UsageExitCode, StrunEdf) {
  ExpectUsageErrors(STRUN_EDF_EXE, {
                                       {"", "subcommand is required"},
                                       {"render", "ENV is required"},
                                       {"frobnicate", "subcommand is required"},
                                       {"import --bogus x", "--bogus"},
                                   });
}

TEST(UsageExitCode, StrunTrain) {
  ExpectUsageErrors(STRUN_TRAIN_EXE, {
                                         {"", "--config-file is required"},
                                         {"--bogus", "unknown argument '--bogus'"},
                                         {"--config-file", "--config-file needs a value"},
                                         {"prepare", "--input is required"},
                                         {"export-hf --checkpoint", "--checkpoint needs a value"},
                                     });
}

}  // namespace
