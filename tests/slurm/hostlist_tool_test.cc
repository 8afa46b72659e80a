// Runs the strun-hostlist program as scripts would.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace {

using ::testing::HasSubstr;

struct ToolRun {
  int exit_code;
  std::string out;  // stdout and stderr together
};

ToolRun Tool(const std::string& args) {
  std::string cmd = std::string("'") + STRUN_HOSTLIST_BIN + "' " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ToolRun r{-1, ""};
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

TEST(StrunHostlistTool, ExpandPrintsOneNamePerLine) {
  ToolRun r = Tool("expand 'nid[001-003],login1'");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "nid001\nnid002\nnid003\nlogin1\n");
  r = Tool("expand ''");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
}

TEST(StrunHostlistTool, CompressJoinsItsArguments) {
  ToolRun r = Tool("compress nid001 nid002 nid004 login1");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "nid[001-002,004],login1\n");
  r = Tool("compress 'nid[001-002]' nid003");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "nid[001-003]\n");
}

TEST(StrunHostlistTool, MalformedListsExitOne) {
  ToolRun r = Tool("expand 'nid[3-1]'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("invalid host list 'nid[3-1]'"));
  r = Tool("compress 'n[]'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("'n[]'"));
}

TEST(StrunHostlistTool, WrongUsageExitsTwo) {
  for (const char* args : {"", "expand", "expand a b", "compress", "shrink a"}) {
    ToolRun r = Tool(args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_THAT(r.out, HasSubstr("usage: strun-hostlist")) << args;
  }
  ToolRun help = Tool("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("usage"));
}

}  // namespace
