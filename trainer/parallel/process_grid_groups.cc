#include "parallel/process_grid_groups.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>

namespace strun::parallel {

void PendingWork::Wait() {
  if (work_) work_->wait();
  work_.reset();
  if (finish_) finish_();
  finish_ = nullptr;
}

CommGroup::CommGroup(c10::intrusive_ptr<compat::CommBackend> backend, std::vector<int> world_ranks,
                     int rank)
    : backend_(std::move(backend)), world_ranks_(std::move(world_ranks)), rank_(rank) {
  TORCH_CHECK(backend_ || world_ranks_.size() == 1, "CommGroup: a group of ", world_ranks_.size(),
              " ranks needs a backend");
  nccl_ = backend_ && backend_->getBackendName() == "nccl";
}

bool CommGroup::NeedsFloatStaging(const at::Tensor& t) const {
  return !nccl_ && (t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf);
}

PendingWork CommGroup::AllReduce(at::Tensor& tensor, ::c10d::ReduceOp op) {
  if (size() == 1) return {};
  ::c10d::AllreduceOptions opts;
  opts.reduceOp = op;
  if (NeedsFloatStaging(tensor)) {
    std::vector<at::Tensor> ts{tensor.to(at::kFloat)};
    auto work = backend_->allreduce(ts, opts);
    return {work, [tensor, staged = ts[0]]() mutable { tensor.copy_(staged); }};
  }
  std::vector<at::Tensor> ts{tensor};
  return {backend_->allreduce(ts, opts), nullptr};
}

PendingWork CommGroup::AllGatherDim0(const at::Tensor& in, at::Tensor& out) {
  TORCH_CHECK(out.is_contiguous() && out.dim() == in.dim() && out.size(0) == in.size(0) * size(),
              "AllGatherDim0: out must be contiguous with size() times in's rows");
  at::Tensor src = in.contiguous();
  if (size() == 1) {
    out.copy_(src);
    return {};
  }
  if (nccl_) {
    return {backend_->_allgather_base(out, src), nullptr};
  }
  // gloo has no _allgather_base before torch 2.x: gather into the row blocks of `out` (or of an
  // fp32 copy of it, which is exact for bf16 and fp16).
  const bool staged = NeedsFloatStaging(src);
  at::Tensor target = staged ? at::empty(out.sizes(), out.options().dtype(at::kFloat)) : out;
  std::vector<at::Tensor> inputs{staged ? src.to(at::kFloat) : src};
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < size(); ++r) {
    outputs[0].push_back(target.narrow(0, r * in.size(0), in.size(0)));
  }
  auto work = backend_->allgather(outputs, inputs);
  if (!staged) return {work, nullptr};
  return {work, [out, target]() mutable { out.copy_(target); }};
}

PendingWork CommGroup::ReduceScatterDim0(const at::Tensor& in, at::Tensor& out) {
  TORCH_CHECK(in.size(0) % size() == 0, "ReduceScatterDim0: ", in.size(0),
              " rows do not split over ", size(), " ranks");
  const int64_t rows = in.size(0) / size();
  TORCH_CHECK(out.is_contiguous() && out.size(0) == rows, "ReduceScatterDim0: bad output shape");
  if (size() == 1) {
    out.copy_(in);
    return {};
  }
  if (nccl_) {
    at::Tensor src = in.contiguous();
    return {backend_->_reduce_scatter_base(out, src), nullptr};
  }
  at::Tensor staging = NeedsFloatStaging(in) ? in.to(at::kFloat).contiguous()
                                             : in.clone(at::MemoryFormat::Contiguous);
  std::vector<at::Tensor> ts{staging};
  ::c10d::AllreduceOptions opts;
  opts.reduceOp = ::c10d::ReduceOp::SUM;
  auto work = backend_->allreduce(ts, opts);
  const int64_t start = rank_ * rows;
  return {work,
          [out, staging, start, rows]() mutable { out.copy_(staging.narrow(0, start, rows)); }};
}

PendingWork CommGroup::Send(at::Tensor& tensor, int dst_rank, int tag) {
  TORCH_CHECK(size() > 1 && dst_rank != rank_, "Send: no other rank to send to");
  std::vector<at::Tensor> ts{tensor};
  return {backend_->send(ts, dst_rank, tag), nullptr};
}

PendingWork CommGroup::Recv(at::Tensor& tensor, int src_rank, int tag) {
  TORCH_CHECK(size() > 1 && src_rank != rank_, "Recv: no other rank to receive from");
  std::vector<at::Tensor> ts{tensor};
  return {backend_->recv(ts, src_rank, tag), nullptr};
}

CommGroupPtr SingleRankGroup() {
  return c10::make_intrusive<CommGroup>(c10::intrusive_ptr<compat::CommBackend>(),
                                        std::vector<int>{0}, 0);
}

BackendFactory GlooBackendFactory(std::chrono::milliseconds timeout, std::string hostname,
                                  int threads) {
#ifdef STRUN_HAVE_GLOO
  return [=](const c10::intrusive_ptr<::c10d::Store>& store, int rank, int size) {
    auto opts = ::c10d::ProcessGroupGloo::Options::create(timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (!hostname.empty()) {
      opts->devices.push_back(::c10d::ProcessGroupGloo::createDeviceForHostname(hostname));
    } else if (ifname && *ifname) {
      opts->devices.push_back(::c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else {
      opts->devices.push_back(::c10d::ProcessGroupGloo::createDefaultDevice());
    }
    opts->threads = threads;
    return c10::intrusive_ptr<compat::CommBackend>(
        c10::make_intrusive<::c10d::ProcessGroupGloo>(store, rank, size, opts));
  };
#else
  return [](const c10::intrusive_ptr<::c10d::Store>&, int,
            int) -> c10::intrusive_ptr<compat::CommBackend> {
    TORCH_CHECK(false, "this build has no gloo (no gloo headers beside libtorch)");
    return {};
  };
#endif
}

#ifdef STRUN_HAVE_NCCL
BackendFactory NcclBackendFactory(std::chrono::milliseconds timeout) {
  return [=](const c10::intrusive_ptr<::c10d::Store>& store, int rank, int size) {
    auto opts = ::c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    return c10::intrusive_ptr<compat::CommBackend>(
        c10::make_intrusive<::c10d::ProcessGroupNCCL>(store, rank, size, opts));
  };
}
#endif

Result<std::unique_ptr<ProcessGroups>> ProcessGroups::Create(
    const ProcessGrid& grid, int world_rank, const c10::intrusive_ptr<::c10d::Store>& store,
    const BackendFactory& factory) {
  if (world_rank < 0 || world_rank >= grid.world_size()) {
    return MakeError(fmt::format("rank {} is outside the process grid of {} ranks", world_rank,
                                 grid.world_size()));
  }
  std::unique_ptr<ProcessGroups> out(new ProcessGroups(grid, world_rank));
  std::map<std::vector<int>, CommGroupPtr> by_ranks;  // nanotron's world_ranks_to_pg
  for (GroupKind kind : kGroupCreationOrder) {
    const auto groups = grid.Groups(kind);
    for (size_t index = 0; index < groups.size(); ++index) {
      const std::vector<int>& ranks = groups[index];
      const auto pos = std::find(ranks.begin(), ranks.end(), world_rank);
      if (pos == ranks.end()) continue;  // gloo and NCCL only need the members
      auto it = by_ranks.find(ranks);
      if (it == by_ranks.end()) {
        const int rank = static_cast<int>(pos - ranks.begin());
        c10::intrusive_ptr<compat::CommBackend> backend;
        if (ranks.size() > 1) {
          const std::string prefix = fmt::format("strun/pg/{}/{}", GroupKindName(kind), index);
          try {
            backend = factory(c10::make_intrusive<::c10d::PrefixStore>(prefix, store), rank,
                              static_cast<int>(ranks.size()));
          } catch (const std::exception& e) {
            return MakeError(
                fmt::format("cannot create the {} process group {} of {} ranks "
                            "(world rank {}): {}",
                            GroupKindName(kind), index, ranks.size(), world_rank, e.what()));
          }
        }
        it = by_ranks.emplace(ranks, c10::make_intrusive<CommGroup>(backend, ranks, rank)).first;
      }
      out->groups_[kind] = it->second;
    }
  }
  // The pp group again, for the gradients that flow backward (see the header), created after all
  // the others on every rank.
  out->pp_backward_ = out->pp();
  if (grid.shape().pp > 1) {
    const auto groups = grid.Groups(GroupKind::kPp);
    const std::vector<int>& ranks = out->pp()->world_ranks();
    const auto index = std::find(groups.begin(), groups.end(), ranks) - groups.begin();
    const std::string prefix = fmt::format("strun/pg/pp_backward/{}", index);
    try {
      auto backend = factory(c10::make_intrusive<::c10d::PrefixStore>(prefix, store),
                             out->pp()->rank(), out->pp()->size());
      out->pp_backward_ = c10::make_intrusive<CommGroup>(backend, ranks, out->pp()->rank());
    } catch (const std::exception& e) {
      return MakeError(
          fmt::format("cannot create the pp_backward process group {} of {} ranks "
                      "(world rank {}): {}",
                      index, ranks.size(), world_rank, e.what()));
    }
  }
  return out;
}

}  // namespace strun::parallel
