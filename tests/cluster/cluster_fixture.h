// tests/cluster/cluster_fixture.h: one local Slurm cluster per test binary, for GoogleTest.
//
//   #include "cluster/cluster_fixture.h"
//   class MyTest : public strun::testing::ClusterTest {};
//   TEST_F(MyTest, RunsOnTwoNodes) {
//     auto r = cluster().Run("srun -N2 hostname", std::chrono::seconds(30));
//     ASSERT_TRUE(r.ok()) << r.Describe();
//   }
//
// The first ClusterTest suite to run starts the cluster (4 nodes) and exports its environment
// (SLURM_CONF, STRUN_CLUSTER_*) into the test process, so any child process reaches it; a global
// test environment stops it when the binary's tests are done, and the cluster script's keeper
// stops it if the binary dies instead. After each test, every job is cancelled and the nodes are
// waited for until idle, so one test's jobs never leak into the next.
//
// Register such a binary with `RESOURCE_LOCK slurm_cluster` (see tests/cluster/CMakeLists.txt).
#pragma once

#include <gtest/gtest.h>

#include "cluster/local_slurm_cluster.h"

namespace strun::testing {

// The binary's cluster, started on first use with `options` (later calls' options are ignored).
// Returns an error when it cannot start.
Result<LocalSlurmCluster*> SharedCluster(const ClusterOptions& options = {});

class ClusterTest : public ::testing::Test {
 protected:
  // Starts the shared cluster with default options. A suite that needs others (a SPANK plugin,
  // more nodes) defines its own `static void SetUpTestSuite() { StartCluster(options); }` and must
  // be the first cluster suite of its binary to run (best: the only one).
  static void SetUpTestSuite() { StartCluster({}); }
  static void StartCluster(const ClusterOptions& options);
  // Fails the test when the cluster could not start.
  void SetUp() override;
  void TearDown() override;

  static LocalSlurmCluster& cluster();
};

}  // namespace strun::testing
