// rank_threads.h: runs the ranks of a process grid as threads of the test process, each with its
// own gloo process groups over one shared c10d::HashStore, and seeded tensors every rank can
// rebuild, so each thread computes the unsharded reference itself.
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <vector>

#include "parallel/process_grid_groups.h"

namespace strun::parallel::testing {

// Calls fn(world_rank, groups) on one thread per rank of `shape`. An exception on a rank fails the
// test naming the rank (the other ranks then fail their collectives at the gloo timeout).
inline void RunRanks(const GridShape& shape, const std::function<void(int, ProcessGroups&)>& fn) {
  at::set_num_threads(1);  // ranks are the parallelism; the machine has few cores
  auto store = c10::make_intrusive<::c10d::HashStore>();
  auto grid = ProcessGrid::Create(shape, shape.world_size());
  ASSERT_TRUE(grid.ok()) << grid.error().message;
  const int world = shape.world_size();
  std::vector<std::string> errors(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        auto groups = ProcessGroups::Create(
            *grid, r, store, GlooBackendFactory(std::chrono::seconds(20), "127.0.0.1", 1));
        if (!groups.ok()) throw std::runtime_error(groups.error().message);
        fn(r, **groups);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
}

// A TP-only grid of `tp` ranks.
inline GridShape TpOnly(int tp) { return GridShape{1, tp, 1, 1}; }

// Standard-normal fp32 values from `seed`: the same on every thread.
inline at::Tensor Seeded(at::IntArrayRef shape, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat));
}

// A leaf the rank differentiates (its own copy).
inline at::Tensor Leaf(const at::Tensor& t) { return t.detach().clone().requires_grad_(true); }

// fp32 tolerance of the comparisons: sharded and unsharded sums differ in order only.
inline void ExpectClose(const at::Tensor& actual, const at::Tensor& expected,
                        const std::string& what, double rtol = 1e-5, double atol = 1e-5) {
  ASSERT_TRUE(actual.defined()) << what << ": undefined";
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  EXPECT_TRUE(at::allclose(actual, expected, rtol, atol))
      << what << ": max |diff| = " << (actual - expected).abs().max().item<double>();
}

}  // namespace strun::parallel::testing
