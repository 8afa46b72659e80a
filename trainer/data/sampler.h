// data/sampler.h: which samples a data-parallel rank trains on, and in what order.
//
// Follows nanotron's get_sampler (torch DistributedSampler with shuffle=True, drop_last=True,
// seed = data_stages[].data.seed, epoch 0; then SkipBatchSampler):
//   1. the n samples are permuted once by ShufflePermutation(n, seed);
//   2. the first (n // dp_size) * dp_size of the permutation are kept;
//   3. rank r takes positions r, r + dp_size, r + 2 dp_size, ... (n // dp_size samples);
//   4. on resume each rank skips consumed_train_samples // dp_size of its samples;
//   5. micro-batches are consecutive runs of micro_batch_size; a partial last one is dropped.
// Ranks are disjoint and together cover all kept samples.
//
// The permutation is our own, fully specified so that any implementation can reproduce it
// (torch.randperm's is not): Fisher-Yates, for i = n-1 down to 1 swap p[i] with p[j], where
// j = x mod (i + 1) for the first x drawn from SplitMix64(seed) with x < 2^64 - (2^64 mod (i + 1))
// (rejection, so j is unbiased). SplitMix64: state += 0x9E3779B97F4A7C15; z = state;
// z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
// return z ^ (z >> 31). The state starts at `seed`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace strun::data {

std::vector<int64_t> ShufflePermutation(int64_t n, uint64_t seed);

class RankSampler {
 public:
  // n samples, shuffled with `seed`, for rank dp_rank of dp_size.
  RankSampler(int64_t n, uint64_t seed, int64_t dp_rank, int64_t dp_size);

  // Samples this rank gets in one pass (n // dp_size).
  int64_t size() const { return per_rank_; }
  // The dataset index of this rank's k-th sample (0 <= k < size()).
  int64_t operator[](int64_t k) const { return permutation_[size_t(dp_rank_ + k * dp_size_)]; }

 private:
  std::vector<int64_t> permutation_;
  int64_t dp_rank_, dp_size_, per_rank_;
};

}  // namespace strun::data
