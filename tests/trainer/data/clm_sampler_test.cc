// Sample windows (nanotron's clm_process) and the shuffled DP split (nanotron's get_sampler).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>

#include "data/clm_windows.h"
#include "data/sampler.h"

namespace strun::data {
namespace {

std::vector<uint64_t> Offsets(const std::vector<int64_t>& lengths) {
  std::vector<uint64_t> off{0};
  for (int64_t l : lengths) off.push_back(off.back() + uint64_t(l));
  return off;
}

// nanotron's group_texts written out literally on token lists, per datasets' shards and batches.
std::vector<std::vector<int64_t>> ReferenceSamples(const std::vector<int64_t>& lengths, int64_t L,
                                                   int64_t num_proc, int64_t batch) {
  std::vector<std::vector<int64_t>> docs;
  int64_t next = 0;
  for (int64_t l : lengths) {
    docs.emplace_back();
    for (int64_t i = 0; i < l; ++i) docs.back().push_back(next++);
  }
  const int64_t n = int64_t(docs.size());
  if (num_proc > n) num_proc = n;
  std::vector<std::vector<int64_t>> out;
  for (int64_t index = 0; index < num_proc; ++index) {
    const int64_t div = n / num_proc, mod = n % num_proc;
    const int64_t start = div * index + std::min(index, mod),
                  end = start + div + (index < mod ? 1 : 0);
    for (int64_t b = start; b < end; b += batch) {
      std::vector<int64_t> concatenated;
      for (int64_t d = b; d < std::min(b + batch, end); ++d)
        concatenated.insert(concatenated.end(), docs[d].begin(), docs[d].end());
      int64_t total = int64_t(concatenated.size());
      if (total >= L + 1) total = ((total - 1) / L) * L + 1;
      for (int64_t i = 0; i < total - (L + 1); i += L)
        out.emplace_back(concatenated.begin() + i, concatenated.begin() + i + L + 1);
    }
  }
  return out;
}

TEST(ClmWindows, HandComputedCases) {
  // 11 tokens, L = 5: total stays 11, range(0, 5, 5) -> one sample; the second full one is dropped.
  EXPECT_EQ(ClmSampleStarts(Offsets({11}), {5, 1}), (std::vector<int64_t>{0}));
  EXPECT_EQ(ClmSampleStarts(Offsets({12}), {5, 1}), (std::vector<int64_t>{0}));
  EXPECT_EQ(ClmSampleStarts(Offsets({16}), {5, 1}), (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(ClmSampleStarts(Offsets({6}), {5, 1}), (std::vector<int64_t>{}));
  EXPECT_EQ(ClmSampleStarts(Offsets({3, 0, 13}), {5, 1}),
            (std::vector<int64_t>{0, 5}));  // documents concatenate
  EXPECT_EQ(ClmSampleStarts(Offsets({}), {5, 1}), (std::vector<int64_t>{}));
}

TEST(ClmWindows, BatchesOf1000RowsDropTheirRemainder) {
  std::vector<int64_t> lengths(2500, 3);  // 1000 rows = 3000 tokens per batch
  const auto starts = ClmSampleStarts(Offsets(lengths), {10, 1});
  // Per full batch: total 3000 -> 2991, samples at 0..2970 step 10 = 298; last batch 1500 -> 1491:
  // 148.
  EXPECT_EQ(starts.size(), size_t(298 + 298 + 148));
  EXPECT_EQ(starts[298], 3000);  // the second batch starts on its own first token
}

TEST(ClmWindows, MatchesNanotronReferenceOnRandomDocuments) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<int64_t> lengths(rng() % 300);
    for (auto& l : lengths) l = int64_t(rng() % 40);
    const int64_t L = 1 + int64_t(rng() % 17), num_proc = 1 + int64_t(rng() % 40),
                  batch = 1 + int64_t(rng() % 50);
    const auto starts = ClmSampleStarts(Offsets(lengths), {L, num_proc, batch});
    const auto reference = ReferenceSamples(lengths, L, num_proc, batch);
    ASSERT_EQ(starts.size(), reference.size()) << "trial " << trial;
    for (size_t i = 0; i < starts.size(); ++i) {
      // Token values are their positions, so a sample is [start, start + L + 1).
      ASSERT_EQ(reference[i].front(), starts[i]);
      ASSERT_EQ(reference[i].back(), starts[i] + L);
    }
  }
}

// ShufflePermutation(10, 42), computed independently from sampler.h's description (in Python).
std::vector<int64_t> PinnedPermutation() { return {0, 9, 5, 8, 6, 4, 7, 2, 1, 3}; }

TEST(Sampler, PermutationIsDeterministicAndPinned) {
  const auto p = ShufflePermutation(10, 42);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(10);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_EQ(ShufflePermutation(10, 42), p);
  EXPECT_NE(ShufflePermutation(10, 43), p);
  // Pinned: the documented algorithm (sampler.h) must not change silently, or resumed runs would
  // read different samples.
  EXPECT_EQ(p, PinnedPermutation());
}

TEST(Sampler, DpRanksAreDisjointAndCoverTheKeptSamples) {
  for (int64_t n : {0, 1, 7, 100, 1001}) {
    for (int64_t dp : {1, 2, 3, 8}) {
      const auto perm = ShufflePermutation(n, 5);
      std::multiset<int64_t> seen;
      for (int64_t r = 0; r < dp; ++r) {
        RankSampler s(n, 5, r, dp);
        EXPECT_EQ(s.size(), n / dp);
        for (int64_t k = 0; k < s.size(); ++k) seen.insert(s[k]);
      }
      const std::multiset<int64_t> expected(perm.begin(), perm.begin() + (n / dp) * dp);
      EXPECT_EQ(seen, expected) << "n=" << n << " dp=" << dp;
    }
  }
}

TEST(Sampler, RankTakesEveryDpSizeThPosition) {
  const auto perm = ShufflePermutation(20, 9);
  RankSampler r1(20, 9, 1, 3);
  ASSERT_EQ(r1.size(), 6);
  for (int64_t k = 0; k < 6; ++k) EXPECT_EQ(r1[k], perm[size_t(1 + 3 * k)]);
}

}  // namespace
}  // namespace strun::data
