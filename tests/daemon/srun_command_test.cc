#include "strun/daemon/srun_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace strun::daemon {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

SrunCommand Parse(const std::vector<std::string>& argv) {
  auto r = ParseSrunCommand(argv);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : SrunCommand{};
}

TEST(ParseSrunCommand, FindsTheStrunProgramAndReadsNodeAndTaskOptions) {
  auto c = Parse({"/usr/bin/srun", "-N", "2", "--ntasks-per-node=1", "--environment=ngc.toml",
                  "/opt/bin/strun", "--nproc-per-node=4", "train.py", "-N", "7"});
  EXPECT_EQ(c.strun_index, 5u);
  EXPECT_EQ(c.nodes, 2);
  EXPECT_EQ(c.ntasks_per_node, 1);
  EXPECT_FALSE(c.ntasks.has_value());
}

TEST(ParseSrunCommand, ReadsEveryValueForm) {
  EXPECT_EQ(Parse({"srun", "-N3", "strun", "x"}).nodes, 3);
  EXPECT_EQ(Parse({"srun", "--nodes=4", "strun", "x"}).nodes, 4);
  EXPECT_EQ(Parse({"srun", "--nodes", "5", "strun", "x"}).nodes, 5);
  EXPECT_EQ(Parse({"srun", "--nodes=2-2", "strun", "x"}).nodes, 2);
  EXPECT_EQ(Parse({"srun", "-n", "8", "strun", "x"}).ntasks, 8);
  EXPECT_EQ(Parse({"srun", "-n8", "strun", "x"}).ntasks, 8);
  EXPECT_EQ(Parse({"srun", "--ntasks=8", "strun", "x"}).ntasks, 8);
  EXPECT_EQ(Parse({"srun", "--ntasks-per-node", "4", "strun", "x"}).ntasks_per_node, 4);
  EXPECT_THAT(Parse({"srun", "-w", "nid[001-002]", "strun", "x"}).nodelist,
              ElementsAre("nid001", "nid002"));
  EXPECT_THAT(Parse({"srun", "--exclude=nid003", "strun", "x"}).exclude, ElementsAre("nid003"));
  EXPECT_THAT(Parse({"srun", "-xnid004", "strun", "x"}).exclude, ElementsAre("nid004"));
}

TEST(ParseSrunCommand, AValueNamedStrunIsNotTheProgram) {
  auto c = Parse({"srun", "-w", "strun", "./strun", "x"});
  EXPECT_EQ(c.strun_index, 3u);
  EXPECT_THAT(c.nodelist, ElementsAre("strun"));
}

TEST(ParseSrunCommand, ErrorsNameTheArgument) {
  auto not_srun = ParseSrunCommand({"mpirun", "strun", "x"});
  ASSERT_FALSE(not_srun.ok());
  EXPECT_THAT(not_srun.error().message, HasSubstr("'mpirun'"));
  auto no_strun = ParseSrunCommand({"srun", "-N2", "torchrun", "train.py"});
  ASSERT_FALSE(no_strun.ok());
  EXPECT_THAT(no_strun.error().message, HasSubstr("runs no strun"));
  auto bad_nodes = ParseSrunCommand({"srun", "--nodes=two", "strun", "x"});
  ASSERT_FALSE(bad_nodes.ok());
  EXPECT_THAT(bad_nodes.error().message, HasSubstr("'--nodes=two'"));
  auto range = ParseSrunCommand({"srun", "-N", "2-4", "strun", "x"});
  ASSERT_FALSE(range.ok());
  EXPECT_THAT(range.error().message, HasSubstr("strund --nodes MIN:MAX"));
  EXPECT_THAT(range.error().message, HasSubstr("'-N 2-4'"));
  auto missing = ParseSrunCommand({"srun", "strun-train", "-N"});
  ASSERT_FALSE(missing.ok());
  auto no_value = ParseSrunCommand({"srun", "--ntasks"});
  ASSERT_FALSE(no_value.ok());
  EXPECT_THAT(no_value.error().message, HasSubstr("'--ntasks' needs a value"));
  auto bad_list = ParseSrunCommand({"srun", "-w", "nid[3-1]", "strun", "x"});
  ASSERT_FALSE(bad_list.ok());
  EXPECT_THAT(bad_list.error().message, HasSubstr("'-w nid[3-1]'"));
  EXPECT_FALSE(ParseSrunCommand({}).ok());
}

TEST(RewriteSrunCommand, ReplacesNodeOptionsAndKeepsEverythingElse) {
  auto c = Parse({"srun", "-N", "2", "-l", "--nodelist=nid[001-002]", "-x", "nid009",
                  "--ntasks-per-node=1", "--environment", "ngc.toml", "strun", "--nproc-per-node=4",
                  "train.py", "-N", "2", "--nodes=3"});
  EXPECT_THAT(RewriteSrunCommand(c, {"nid001", "nid003"}),
              ElementsAre("srun", "--nodes=2", "--nodelist=nid001,nid003", "--overlap", "-l",
                          "--ntasks-per-node=1", "--environment", "ngc.toml", "strun",
                          "--nproc-per-node=4", "train.py", "-N", "2", "--nodes=3"));
}

TEST(RewriteSrunCommand, DropsEveryFormOfTheNodeOptions) {
  auto c =
      Parse({"srun", "-N2", "--nodes", "2", "--nodes=2", "-wnid1", "-w", "nid1", "--nodelist",
             "nid1", "--exclude", "nid5", "-xnid5", "--exclude=nid5", "-n", "4", "strun", "a"});
  EXPECT_THAT(RewriteSrunCommand(c, {"nid7"}), ElementsAre("srun", "--nodes=1", "--nodelist=nid7",
                                                           "--overlap", "-n", "4", "strun", "a"));
}

TEST(NumAgents, TasksPerNodeTimesNodesUnlessNtasksIsGiven) {
  EXPECT_EQ(NumAgents(Parse({"srun", "strun", "x"}), 3, std::nullopt), 3);
  EXPECT_EQ(NumAgents(Parse({"srun", "--ntasks-per-node=4", "strun", "x"}), 2, std::nullopt), 8);
  EXPECT_EQ(NumAgents(Parse({"srun", "strun", "x"}), 2, 4), 8)
      << "SLURM_NTASKS_PER_NODE counts when srun has none";
  EXPECT_EQ(NumAgents(Parse({"srun", "--ntasks-per-node=1", "strun", "x"}), 2, 4), 2);
  EXPECT_EQ(
      NumAgents(Parse({"srun", "-n", "5", "--ntasks-per-node=4", "strun", "x"}), 2, std::nullopt),
      5);
}

}  // namespace
}  // namespace strun::daemon
