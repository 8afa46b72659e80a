// data/clm_windows.h: cutting a prepared split into training samples exactly as nanotron's
// Hugging Face path does (nanotron/dataloader.py clm_process at 5f8a52b0).
//
// nanotron tokenizes the rows (documents) with datasets' map(batched=True, num_proc=P): the rows
// are cut into P contiguous shards (P reduced to the row count when larger; shard i gets
// len // P rows, plus one for the first len % P shards), each shard in batches of 1000 rows. Per
// batch the rows' tokens are concatenated (no EOS in between: GPT-2's tokenizer adds none) and
//   T = total tokens; if T >= L + 1: T = ((T - 1) // L) * L + 1         (L = sequence_length)
//   samples start at 0, L, 2L, ... while start < T - (L + 1), each L + 1 tokens long
// so consecutive samples overlap by one token, each batch's remainder is dropped, and so is the
// last full sample of each batch (the loop bound is exclusive). Samples keep shard, then batch,
// then position order; the sampler (sampler.h) shuffles them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace strun::data {

struct ClmOptions {
  int64_t sequence_length = 0;
  // data_stages[].data.dataset.dataset_processing_num_proc_per_process (the shard count P).
  int64_t num_proc = 1;
  // Rows per batch of datasets' map (its default, which nanotron keeps).
  int64_t rows_per_batch = 1000;
};

// The first token of each sample, in nanotron's dataset order. `document_offsets` holds
// num_documents + 1 token offsets (TokenFile::document_offsets()).
std::vector<int64_t> ClmSampleStarts(std::span<const uint64_t> document_offsets,
                                     const ClmOptions& options);

}  // namespace strun::data
