// Topology and key exchange through the PMIx server of a `srun --mpi=pmix` step.
#include "strun/slurm/pmix.h"

#include <pmix.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "strun/slurm/hostlist.h"

namespace strun::slurm {
namespace {

std::string Describe(pmix_status_t rc) { return PMIx_Error_string(rc); }

// Owns a value returned by PMIx_Get.
struct ValueDeleter {
  void operator()(pmix_value_t* v) const {
    if (v != nullptr) PMIX_VALUE_RELEASE(v);
  }
};
using ValuePtr = std::unique_ptr<pmix_value_t, ValueDeleter>;

std::optional<uint64_t> AsUnsigned(const pmix_value_t& v) {
  switch (v.type) {
    case PMIX_UINT8:
      return v.data.uint8;
    case PMIX_UINT16:
      return v.data.uint16;
    case PMIX_UINT32:
      return v.data.uint32;
    case PMIX_UINT64:
      return v.data.uint64;
    case PMIX_UINT:
      return v.data.uint;
    case PMIX_SIZE:
      return v.data.size;
    case PMIX_PROC_RANK:
      return v.data.rank;
    case PMIX_INT:
      if (v.data.integer >= 0) return static_cast<uint64_t>(v.data.integer);
      return std::nullopt;
    case PMIX_INT32:
      if (v.data.int32 >= 0) return static_cast<uint64_t>(v.data.int32);
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

}  // namespace

struct PmixSession::Impl {
  pmix_proc_t self{};

  Result<ValuePtr> GetValue(uint32_t rank, const char* key) {
    pmix_proc_t proc{};
    PMIX_PROC_LOAD(&proc, self.nspace, rank);
    pmix_value_t* value = nullptr;
    pmix_status_t rc = PMIx_Get(&proc, key, nullptr, 0, &value);
    if (rc != PMIX_SUCCESS || value == nullptr) {
      return MakeError(std::string("PMIx_Get(") + key + ") failed: " + Describe(rc));
    }
    return ValuePtr(value);
  }

  // Integer attributes are published either for the job (wildcard rank) or for each process,
  // depending on the PMIx server; ask for our own rank first, then the job.
  Result<uint64_t> GetUnsigned(const char* key, bool job_level) {
    std::string failures;
    for (uint32_t rank :
         {job_level ? PMIX_RANK_WILDCARD : self.rank, job_level ? self.rank : PMIX_RANK_WILDCARD}) {
      auto v = GetValue(rank, key);
      if (!v.ok()) {
        failures = v.error().message;
        continue;
      }
      if (auto n = AsUnsigned(**v)) return *n;
      return MakeError(std::string("PMIx attribute ") + key + " has a non-integer type " +
                       std::to_string((*v)->type));
    }
    return MakeError(failures);
  }
};

bool InPmixStep(const Environment& env) {
  return env.Has("PMIX_RANK") && env.Has("PMIX_NAMESPACE");
}

PmixSession::PmixSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PmixSession::~PmixSession() { PMIx_Finalize(nullptr, 0); }

Result<std::unique_ptr<PmixSession>> PmixSession::Create() {
  auto impl = std::make_unique<Impl>();
  pmix_status_t rc = PMIx_Init(&impl->self, nullptr, 0);
  if (rc != PMIX_SUCCESS) {
    return MakeError("PMIx_Init failed: " + Describe(rc) +
                     ". PMIx needs a step started with srun --mpi=pmix (PMIX_NAMESPACE and "
                     "PMIX_RANK set by Slurm's PMIx plugin)");
  }
  return std::unique_ptr<PmixSession>(new PmixSession(std::move(impl)));
}

Result<JobTopology> PmixSession::Topology(const Environment& env) {
  Impl& s = *impl_;
  JobTopology t;
  t.source = "pmix";
  t.rank = static_cast<int>(s.self.rank);

  auto size = s.GetUnsigned(PMIX_JOB_SIZE, true);
  if (!size.ok()) return size.error();
  auto local_rank = s.GetUnsigned(PMIX_LOCAL_RANK, false);
  if (!local_rank.ok()) return local_rank.error();
  auto local_size = s.GetUnsigned(PMIX_LOCAL_SIZE, true);
  if (!local_size.ok()) return local_size.error();
  // Not PMIX_NODE_RANK: Slurm sets that to the rank on the node.
  auto node_id = s.GetUnsigned(PMIX_NODEID, false);
  if (!node_id.ok()) return node_id.error();
  t.world_size = static_cast<int>(*size);
  t.local_rank = static_cast<int>(*local_rank);
  t.local_world_size = static_cast<int>(*local_size);
  t.node_rank = static_cast<int>(*node_id);

  char* node_list = nullptr;
  pmix_status_t rc = PMIx_Resolve_nodes(s.self.nspace, &node_list);
  if (rc != PMIX_SUCCESS || node_list == nullptr) {
    return MakeError("PMIx_Resolve_nodes failed: " + Describe(rc));
  }
  std::string pmix_nodes = node_list;
  std::free(node_list);
  auto nodes = ExpandHostlist(pmix_nodes);
  if (!nodes.ok() || nodes->empty()) {
    return MakeError("PMIx returned an unusable node list '" + pmix_nodes + "'");
  }
  t.nodes = std::move(*nodes);
  // PMIX_NODEID counts nodes in Slurm's order; PMIx does not promise that order for its node
  // list, so use Slurm's own list when it names the same nodes.
  if (auto step_nodes = env.Get("SLURM_STEP_NODELIST")) {
    auto slurm_nodes = ExpandHostlist(*step_nodes);
    if (slurm_nodes.ok() && slurm_nodes->size() == t.nodes.size()) {
      std::vector<std::string> a = *slurm_nodes, b = t.nodes;
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      if (a == b) t.nodes = std::move(*slurm_nodes);
    }
  }
  t.num_nodes = static_cast<int>(t.nodes.size());
  if (t.node_rank < 0 || t.node_rank >= t.num_nodes) {
    return MakeError("PMIx gives PMIX_NODEID=" + std::to_string(t.node_rank) +
                     " but its node list '" + pmix_nodes + "' has " + std::to_string(t.num_nodes) +
                     " nodes");
  }

  for (const std::string& node : t.nodes) {
    pmix_proc_t* procs = nullptr;
    size_t nprocs = 0;
    rc = PMIx_Resolve_peers(node.c_str(), s.self.nspace, &procs, &nprocs);
    if (rc != PMIX_SUCCESS) {
      return MakeError("PMIx_Resolve_peers(" + node + ") failed: " + Describe(rc));
    }
    if (procs != nullptr) PMIX_PROC_FREE(procs, nprocs);
    t.tasks_per_node.push_back(static_cast<int>(nprocs));
  }
  int total = 0;
  for (int n : t.tasks_per_node) total += n;
  if (total != t.world_size ||
      t.tasks_per_node[static_cast<size_t>(t.node_rank)] != t.local_world_size) {
    return MakeError("PMIx is inconsistent: job size " + std::to_string(t.world_size) +
                     ", local size " + std::to_string(t.local_world_size) + ", but its nodes '" +
                     pmix_nodes + "' hold " + std::to_string(total) + " processes");
  }
  if (t.rank >= t.world_size || t.local_rank >= t.local_world_size) {
    return MakeError("PMIx is inconsistent: rank " + std::to_string(t.rank) + " of " +
                     std::to_string(t.world_size) + ", local rank " + std::to_string(t.local_rank) +
                     " of " + std::to_string(t.local_world_size));
  }
  t.node_name = t.nodes[static_cast<size_t>(t.node_rank)];

  // What PMIx does not know comes from Slurm's variables.
  t.job_id = env.Get("SLURM_JOB_ID").value_or(env.Get("SLURM_JOBID").value_or(s.self.nspace));
  if (auto step = env.Get("SLURM_STEP_ID")) t.step_id = *step;
  auto int_var = [&](const char* name, int min) -> Result<int> {
    auto v = env.Get(name);
    if (!v) return 0;
    char* end = nullptr;
    errno = 0;
    long n = std::strtol(v->c_str(), &end, 10);
    if (v->empty() || *end != '\0' || errno != 0 || n < min || n > 1 << 30) {
      return MakeError(std::string(name) + "=" + *v + " is not a valid count");
    }
    return static_cast<int>(n);
  };
  auto gpus_on_node = int_var("SLURM_GPUS_ON_NODE", 0);
  if (!gpus_on_node.ok()) return gpus_on_node.error();
  t.gpus_on_node = *gpus_on_node;
  auto cpus = int_var("SLURM_CPUS_PER_TASK", 1);
  if (!cpus.ok()) return cpus.error();
  t.cpus_per_task = *cpus;
  auto restarts = int_var("SLURM_RESTART_COUNT", 0);
  if (!restarts.ok()) return restarts.error();
  t.restart_count = *restarts;
  auto gpus = env.Get("SLURM_STEP_GPUS");
  if (!gpus) gpus = env.Get("SLURM_JOB_GPUS");
  if (gpus && !gpus->empty()) {
    size_t start = 0;
    while (true) {
      size_t comma = gpus->find(',', start);
      t.gpus.push_back(gpus->substr(start, comma == std::string::npos ? comma : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return t;
}

Status PmixSession::Put(const std::string& key, const std::string& value) {
  if (key.empty() || key.size() > PMIX_MAX_KEYLEN) {
    return MakeError("PMIx key '" + key + "' must have 1 to " + std::to_string(PMIX_MAX_KEYLEN) +
                     " characters");
  }
  pmix_value_t v{};
  v.type = PMIX_STRING;
  v.data.string = const_cast<char*>(value.c_str());  // PMIx_Put copies it
  pmix_status_t rc = PMIx_Put(PMIX_GLOBAL, key.c_str(), &v);
  if (rc != PMIX_SUCCESS) return MakeError("PMIx_Put(" + key + ") failed: " + Describe(rc));
  rc = PMIx_Commit();
  if (rc != PMIX_SUCCESS) return MakeError("PMIx_Commit failed: " + Describe(rc));
  return Status();
}

Status PmixSession::Fence() {
  pmix_info_t info;
  bool collect = true;
  PMIX_INFO_CONSTRUCT(&info);
  PMIX_INFO_LOAD(&info, PMIX_COLLECT_DATA, &collect, PMIX_BOOL);
  pmix_status_t rc = PMIx_Fence(nullptr, 0, &info, 1);
  PMIX_INFO_DESTRUCT(&info);
  if (rc != PMIX_SUCCESS) return MakeError("PMIx_Fence failed: " + Describe(rc));
  return Status();
}

Result<std::string> PmixSession::Get(int rank, const std::string& key) {
  if (rank < 0) return MakeError("PMIx_Get: negative rank " + std::to_string(rank));
  auto v = impl_->GetValue(static_cast<uint32_t>(rank), key.c_str());
  if (!v.ok()) return v.error();
  if ((*v)->type != PMIX_STRING || (*v)->data.string == nullptr) {
    return MakeError("PMIx value of '" + key + "' from rank " + std::to_string(rank) +
                     " is not a string");
  }
  return std::string((*v)->data.string);
}

}  // namespace strun::slurm
