#include "parallel/communicator.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <torch/csrc/distributed/c10d/HashStore.hpp>

#include "model/torch_compat.h"
#include "parallel/process_grid_groups.h"

namespace strun::parallel {

struct Communicator::Impl {
  c10::intrusive_ptr<::c10d::Store> store;
  c10::intrusive_ptr<compat::CommBackend> group;
  bool nccl = false;
  int device_index = 0;
  std::string master_addr;
  std::chrono::seconds timeout{600};
};

Communicator::Communicator(int rank, int size, std::unique_ptr<Impl> impl)
    : rank_(rank), size_(size), impl_(std::move(impl)) {}

Communicator::~Communicator() = default;

Result<std::unique_ptr<Communicator>> Communicator::Create(const TorchrunEnv& env, Backend backend,
                                                           std::chrono::seconds timeout) {
  auto impl = std::make_unique<Impl>();
  impl->device_index = env.local_rank;
  impl->master_addr = env.master_addr;
  impl->timeout = timeout;
  if (env.world_size == 1) {
    return std::unique_ptr<Communicator>(new Communicator(0, 1, std::move(impl)));
  }
  try {
    ::c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(env.master_port);
    opts.isServer = env.rank == 0;
    opts.numWorkers = static_cast<std::size_t>(env.world_size);
    opts.waitWorkers = true;
    opts.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
    impl->store = c10::make_intrusive<::c10d::TCPStore>(env.master_addr, opts);
  } catch (const std::exception& e) {
    return MakeError("cannot " + std::string(env.rank == 0 ? "host" : "reach") +
                     " the rendezvous store at MASTER_ADDR=" + env.master_addr + " MASTER_PORT=" +
                     std::to_string(env.master_port) + " (rank " + std::to_string(env.rank) +
                     " of " + std::to_string(env.world_size) + "): " + e.what() +
                     "; check that the port is free on rank 0's host and that every rank uses "
                     "the same MASTER_ADDR/MASTER_PORT/WORLD_SIZE");
  }
  try {
    if (backend == Backend::kNccl) {
#ifdef STRUN_HAVE_NCCL
      auto opts = ::c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
      impl->group = c10::make_intrusive<::c10d::ProcessGroupNCCL>(impl->store, env.rank,
                                                                  env.world_size, opts);
      impl->nccl = true;
#else
      return MakeError(
          "this strun-train was built without NCCL (libtorch without CUDA, or no nccl.h); run on "
          "CPU or rebuild against a CUDA libtorch with NCCL");
#endif
    } else {
#ifdef STRUN_HAVE_GLOO
      auto opts = ::c10d::ProcessGroupGloo::Options::create(
          std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname && *ifname) {
        opts->devices.push_back(::c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost") {
        opts->devices.push_back(::c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        opts->devices.push_back(::c10d::ProcessGroupGloo::createDefaultDevice());
      }
      opts->threads = 2;
      impl->group = c10::make_intrusive<::c10d::ProcessGroupGloo>(impl->store, env.rank,
                                                                  env.world_size, opts);
#else
      return MakeError(
          "this strun-train was built without gloo (no gloo headers beside libtorch); on CPU "
          "build against a libtorch with gloo (Debian: libtorch-dev + libgloo-dev)");
#endif
    }
  } catch (const std::exception& e) {
    return MakeError(std::string("cannot create the ") +
                     (backend == Backend::kNccl ? "NCCL" : "gloo") + " process group (rank " +
                     std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                     "): " + e.what());
  }
  return std::unique_ptr<Communicator>(new Communicator(env.rank, env.world_size, std::move(impl)));
}

namespace {
// NCCL only moves device memory: host tensors (small bookkeeping values) go through the device.
bool NeedsStaging(bool nccl, const at::Tensor& t) { return nccl && !t.is_cuda(); }
}  // namespace

void Communicator::AllReduceSum(at::Tensor& tensor) {
  if (size_ == 1) return;
  if (NeedsStaging(impl_->nccl, tensor)) {
    at::Tensor d =
        tensor.to(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(impl_->device_index)));
    AllReduceSum(d);
    tensor.copy_(d.cpu());
    return;
  }
  std::vector<at::Tensor> ts{tensor};
  ::c10d::AllreduceOptions opts;
  opts.reduceOp = ::c10d::ReduceOp::SUM;
  impl_->group->allreduce(ts, opts)->wait();
}

void Communicator::AllReduceMean(at::Tensor& tensor) {
  if (size_ == 1) return;
  AllReduceSum(tensor);
  tensor.div_(static_cast<double>(size_));
}

void Communicator::AllGather(const at::Tensor& shard, at::Tensor& out) {
  TORCH_CHECK(out.is_contiguous() && out.numel() == shard.numel() * size_,
              "AllGather: output must be contiguous with size() * shard.numel() elements");
  if (size_ == 1) {
    out.view({-1}).copy_(shard.reshape({-1}));
    return;
  }
  std::vector<at::Tensor> in{shard.contiguous()};
  std::vector<std::vector<at::Tensor>> outs(1);
  auto chunks = out.view({size_, -1});
  for (int r = 0; r < size_; ++r) outs[0].push_back(chunks[r].view(shard.sizes()));
  impl_->group->allgather(outs, in)->wait();
}

void Communicator::Broadcast(at::Tensor& tensor, int root) {
  if (size_ == 1) return;
  if (NeedsStaging(impl_->nccl, tensor)) {
    at::Tensor d =
        tensor.to(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(impl_->device_index)));
    Broadcast(d, root);
    tensor.copy_(d.cpu());
    return;
  }
  std::vector<at::Tensor> ts{tensor};
  ::c10d::BroadcastOptions opts;
  opts.rootRank = root;
  impl_->group->broadcast(ts, opts)->wait();
}

Result<std::unique_ptr<ProcessGroups>> Communicator::CreateGridGroups(const ProcessGrid& grid) {
  if (grid.world_size() != size_) {
    return MakeError("process grid of " + std::to_string(grid.world_size()) +
                     " ranks for a job of " + std::to_string(size_));
  }
  if (size_ == 1) {
    // No store: a one-rank grid needs no backend (every group is the identity).
    return ProcessGroups::Create(grid, 0, c10::make_intrusive<::c10d::HashStore>(),
                                 GlooBackendFactory(std::chrono::milliseconds(1000)));
  }
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(impl_->timeout);
  BackendFactory factory;
  if (impl_->nccl) {
#ifdef STRUN_HAVE_NCCL
    factory = NcclBackendFactory(timeout);
#endif
  } else {
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    const bool loopback = impl_->master_addr == "127.0.0.1" || impl_->master_addr == "localhost";
    factory = GlooBackendFactory(timeout, (!ifname || !*ifname) && loopback ? "127.0.0.1" : "");
  }
  return ProcessGroups::Create(grid, rank_, impl_->store, factory);
}

std::unique_ptr<Communicator> Communicator::ForGroup(const CommGroup& group) const {
  auto impl = std::make_unique<Impl>();
  impl->group = group.backend();
  impl->nccl = impl_->nccl;
  impl->device_index = impl_->device_index;
  impl->master_addr = impl_->master_addr;
  impl->timeout = impl_->timeout;
  return std::unique_ptr<Communicator>(
      new Communicator(group.rank(), group.size(), std::move(impl)));
}

void Communicator::Barrier() {
  if (size_ == 1) return;
  // An all-reduce of one element on the group's device: ProcessGroupNCCL::barrier has to guess
  // the device, this does not.
  auto options = at::TensorOptions().dtype(at::kFloat);
  if (impl_->nccl)
    options =
        options.device(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(impl_->device_index)));
  at::Tensor t = at::zeros({1}, options);
  AllReduceSum(t);
  if (impl_->nccl) t.cpu();  // the host waits for the device
}

}  // namespace strun::parallel
