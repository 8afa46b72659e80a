#include "cluster/cluster_fixture.h"

#include <cstdlib>
#include <memory>

namespace strun::testing {
namespace {

std::unique_ptr<LocalSlurmCluster>& TheCluster() {
  static std::unique_ptr<LocalSlurmCluster> cluster;
  return cluster;
}

std::string& StartError() {
  static std::string error;
  return error;
}

// Stops the cluster after the last test. Registered when this file is linked, i.e. by any binary
// that uses ClusterTest or SharedCluster.
class ClusterEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    if (auto& c = TheCluster()) {
      Status s = c->Stop();
      if (!s) ADD_FAILURE() << s.error().message;
      c.reset();
    }
  }
};

[[maybe_unused]] ::testing::Environment* const registered =
    ::testing::AddGlobalTestEnvironment(new ClusterEnvironment);

}  // namespace

Result<LocalSlurmCluster*> SharedCluster(const ClusterOptions& options) {
  auto& cluster = TheCluster();
  if (cluster) return cluster.get();
  if (!StartError().empty()) return MakeError(StartError());
  auto started = LocalSlurmCluster::Start(options);
  if (!started) {
    StartError() = started.error().message;
    return started.error();
  }
  cluster = std::move(*started);
  for (const auto& [key, value] : cluster->env()) setenv(key.c_str(), value.c_str(), 1);
  return cluster.get();
}

void ClusterTest::StartCluster(const ClusterOptions& options) { (void)SharedCluster(options); }

void ClusterTest::SetUp() {
  if (!TheCluster()) FAIL() << "the local Slurm cluster is not running: " << StartError();
}

void ClusterTest::TearDown() {
  if (!TheCluster()) return;
  Status s = TheCluster()->Reset();
  if (!s) ADD_FAILURE() << s.error().message << "\n" << TheCluster()->LogTail();
}

LocalSlurmCluster& ClusterTest::cluster() { return *TheCluster(); }

}  // namespace strun::testing
