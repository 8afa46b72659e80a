#include "data/sampler.h"

#include <algorithm>
#include <numeric>
#include <utility>

namespace strun::data {
namespace {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Unbiased in [0, k).
  uint64_t Below(uint64_t k) {
    const uint64_t limit = UINT64_MAX - (UINT64_MAX % k + 1) % k;  // largest multiple of k, minus 1
    uint64_t x = Next();
    while (x > limit) x = Next();
    return x % k;
  }

 private:
  uint64_t state_;
};

}  // namespace

std::vector<int64_t> ShufflePermutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(size_t(std::max<int64_t>(n, 0)));
  std::iota(p.begin(), p.end(), int64_t{0});
  SplitMix64 rng(seed);
  for (int64_t i = n - 1; i >= 1; --i)
    std::swap(p[size_t(i)], p[size_t(rng.Below(uint64_t(i) + 1))]);
  return p;
}

RankSampler::RankSampler(int64_t n, uint64_t seed, int64_t dp_rank, int64_t dp_size)
    : permutation_(ShufflePermutation(n, seed)),
      dp_rank_(dp_rank),
      dp_size_(dp_size),
      per_rank_(dp_size > 0 ? n / dp_size : 0) {}

}  // namespace strun::data
