// strun-pmix-probe: run under `srun --mpi=pmix` to check libstrun_slurm's PMIx code on a real
// cluster. Each task prints one line
//   pmix-probe first_node_addr=ADDR rank=R world_size=W local_rank=L local_world_size=LW
//   node_rank=N num_nodes=NN
//     nodes=a,b tasks_per_node=2,2 node_name=a master=<rank 0's value> neighbour=ok
//     slurm_env=match|differs|absent
// after publishing "addr-R:port" under a key, fencing and reading rank 0's and the next rank's
// values. Exits 1 with a message on stderr on any failure.
#include <cstdio>
#include <string>

#include "strun/environment.h"
#include "strun/slurm/node_address.h"
#include "strun/slurm/pmix.h"
#include "strun/slurm/topology.h"

namespace {

std::string Join(const auto& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ',';
    if constexpr (std::is_same_v<std::decay_t<decltype(item)>, int>) {
      out += std::to_string(item);
    } else {
      out += item;
    }
  }
  return out;
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "pmix-probe: %s\n", what.c_str());
  return 1;
}

std::string ValueFor(int rank) {
  return "addr-" + std::to_string(rank) + ":" + std::to_string(29500 + rank);
}

}  // namespace

int main() {
  using namespace strun;
  using namespace strun::slurm;
  Environment env = Environment::FromProcess();
  if (!InPmixStep(env)) return Fail("PMIX_RANK/PMIX_NAMESPACE not set: run under srun --mpi=pmix");
  auto session = PmixSession::Create();
  if (!session.ok()) return Fail(session.error().message);
  auto topo = (*session)->Topology(env);
  if (!topo.ok()) return Fail(topo.error().message);
  const JobTopology& t = *topo;

  if (Status s = (*session)->Put("strun.probe", ValueFor(t.rank)); !s.ok())
    return Fail(s.error().message);
  if (Status s = (*session)->Fence(); !s.ok()) return Fail(s.error().message);
  auto master = (*session)->Get(0, "strun.probe");
  if (!master.ok()) return Fail(master.error().message);
  if (*master != ValueFor(0))
    return Fail("rank 0 published '" + *master + "', expected '" + ValueFor(0) + "'");
  int next = (t.rank + 1) % t.world_size;
  auto neighbour = (*session)->Get(next, "strun.probe");
  if (!neighbour.ok()) return Fail(neighbour.error().message);
  if (*neighbour != ValueFor(next))
    return Fail("rank " + std::to_string(next) + " published '" + *neighbour + "'");

  std::string slurm_env = "absent";
  if (InSlurmStep(env)) {
    auto s = TopologyFromSlurmEnv(env);
    if (!s.ok()) return Fail("SLURM_* topology: " + s.error().message);
    bool same = s->rank == t.rank && s->world_size == t.world_size &&
                s->local_rank == t.local_rank && s->local_world_size == t.local_world_size &&
                s->node_rank == t.node_rank && s->nodes == t.nodes &&
                s->tasks_per_node == t.tasks_per_node;
    slurm_env = same ? "match" : "differs";
  }
  // The address of the first node as Slurm knows it (NodeAddr), the launcher's MASTER_ADDR.
  auto first_node_addr = NodeAddress(t.nodes.front());
  if (!first_node_addr.ok()) return Fail(first_node_addr.error().message);
  std::printf(
      "pmix-probe first_node_addr=%s rank=%d world_size=%d local_rank=%d local_world_size=%d "
      "node_rank=%d "
      "num_nodes=%d nodes=%s tasks_per_node=%s node_name=%s master=%s neighbour=ok slurm_env=%s\n",
      first_node_addr->c_str(), t.rank, t.world_size, t.local_rank, t.local_world_size, t.node_rank,
      t.num_nodes, Join(t.nodes).c_str(), Join(t.tasks_per_node).c_str(), t.node_name.c_str(),
      master->c_str(), slurm_env.c_str());
  std::fflush(stdout);
  // A last fence so that no task finalizes while another still reads from it.
  if (Status s = (*session)->Fence(); !s.ok()) return Fail(s.error().message);
  return slurm_env == "differs" ? 1 : 0;
}
