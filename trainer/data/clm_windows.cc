#include "data/clm_windows.h"

#include <algorithm>

namespace strun::data {

std::vector<int64_t> ClmSampleStarts(std::span<const uint64_t> document_offsets,
                                     const ClmOptions& options) {
  std::vector<int64_t> starts;
  const int64_t rows = document_offsets.empty() ? 0 : int64_t(document_offsets.size()) - 1;
  const int64_t L = options.sequence_length;
  if (rows == 0 || L <= 0) return starts;
  const int64_t shards = std::clamp<int64_t>(options.num_proc, 1, rows);
  const int64_t batch_rows = std::max<int64_t>(options.rows_per_batch, 1);
  const int64_t div = rows / shards, mod = rows % shards;
  for (int64_t shard = 0; shard < shards; ++shard) {
    const int64_t shard_begin = div * shard + std::min(shard, mod);
    const int64_t shard_end = shard_begin + div + (shard < mod ? 1 : 0);
    for (int64_t b = shard_begin; b < shard_end; b += batch_rows) {
      const int64_t e = std::min(b + batch_rows, shard_end);
      const int64_t first = int64_t(document_offsets[b]);
      int64_t total = int64_t(document_offsets[e]) - first;
      if (total >= L + 1) total = ((total - 1) / L) * L + 1;
      for (int64_t i = 0; i < total - (L + 1); i += L) starts.push_back(first + i);
    }
  }
  return starts;
}

}  // namespace strun::data
