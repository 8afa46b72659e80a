// data/sample_stream.h: the micro-batches a data-parallel rank trains on.
//
// A SampleStream reads one data stage's prepared split (token_file.h), cuts it into nanotron's
// samples of sequence_length + 1 tokens (clm_windows.h), orders them for this rank
// (sampler.h, resuming after consumed_train_samples) and hands out micro-batches of
// micro_batch_size samples, row-major: sample b is tokens [b * (L + 1), (b + 1) * (L + 1)).
// Inputs are the first L tokens of a sample, labels the last L (nanotron's DataCollatorForCLM).
// A background thread reads ahead `prefetch` micro-batches, so that loading (page faults on the
// mapped file included) overlaps compute.
//
// A StagedSampleStream switches between data stages (data_stages[] in the config): training step
// s (1-based) reads from the stage with the largest start_training_step <= s, each stage with its
// own seed and its own count of consumed samples, as nanotron keeps them.
//
// Nothing here depends on torch or on the config structs: the trainer passes plain values.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/clm_windows.h"
#include "data/token_file.h"
#include "strun/result.h"

namespace strun::data {

struct SampleStreamOptions {
  int64_t sequence_length = 0;
  int64_t micro_batch_size = 1;
  int64_t dp_rank = 0;
  int64_t dp_size = 1;
  uint64_t seed = 42;                  // data_stages[].data.seed
  int64_t num_proc = 1;                // dataset_processing_num_proc_per_process (clm_windows.h)
  int64_t consumed_train_samples = 0;  // of this stage, summed over all DP ranks
  int prefetch = 4;                    // micro-batches read ahead
  // When set, a split whose tokenizer has more ids than this is refused (the model's vocab_size),
  // as nanotron asserts.
  std::optional<int64_t> max_vocab_size;
};

class SampleStream {
 public:
  static Result<std::unique_ptr<SampleStream>> Open(const std::string& split_base,
                                                    const SampleStreamOptions& options);
  static Result<std::unique_ptr<SampleStream>> Open(std::shared_ptr<const TokenFile> file,
                                                    const SampleStreamOptions& options);
  ~SampleStream();
  SampleStream(const SampleStream&) = delete;
  SampleStream& operator=(const SampleStream&) = delete;

  // The next micro_batch_size x (sequence_length + 1) tokens; an error once this rank's samples
  // are used up.
  Result<std::vector<int32_t>> Next();

  // Samples in the whole split (before the DP split).
  int64_t num_samples() const { return num_samples_; }
  // Micro-batches this rank can still take.
  int64_t micro_batches_left() const;
  const TokenFileHeader& header() const { return file_->header(); }

  struct Prefetcher;

 private:
  SampleStream() = default;
  std::shared_ptr<const TokenFile> file_;
  SampleStreamOptions options_;
  int64_t num_samples_ = 0;
  int64_t per_rank_ = 0;
  int64_t next_sample_ = 0;  // index into this rank's samples of the next micro-batch
  std::unique_ptr<Prefetcher> prefetcher_;
};

struct DataStage {
  std::string name;
  int64_t start_training_step = 1;
  std::string split_base;  // a prepared split, e.g. from ResolvePreparedDataset (dataset_store.h)
  uint64_t seed = 42;
  int64_t num_proc = 1;
};

struct StagedStreamOptions {
  int64_t sequence_length = 0;
  int64_t micro_batch_size = 1;
  int64_t dp_rank = 0;
  int64_t dp_size = 1;
  int prefetch = 4;
  std::optional<int64_t> max_vocab_size;
};

// Samples consumed per stage after `completed_steps` steps of `global_batch_size` samples
// (stage starts sorted ascending; what a checkpoint records per stage).
std::vector<int64_t> ConsumedSamplesPerStage(const std::vector<int64_t>& stage_start_steps,
                                             int64_t completed_steps, int64_t global_batch_size);

class StagedSampleStream {
 public:
  // Opens every stage's split up front (so a missing or mismatched one fails at start-up).
  // consumed_per_stage: as ConsumedSamplesPerStage, or from a checkpoint; empty means none.
  static Result<std::unique_ptr<StagedSampleStream>> Open(std::vector<DataStage> stages,
                                                          const StagedStreamOptions& options,
                                                          std::vector<int64_t> consumed_per_stage);

  // The next micro-batch of training step `step` (1-based, non-decreasing).
  Result<std::vector<int32_t>> Next(int64_t step);

  // Checks, before training, that every stage has samples for its steps up to `last_step`
  // (tokens.train_steps) with `micro_batches_per_step` (batch_accumulation_per_replica) micro-
  // batches per step; the error names the stage and says what to change.
  Status CheckSufficient(int64_t last_step, int64_t micro_batches_per_step) const;

  // Index of the stage that step `step` reads from.
  size_t StageFor(int64_t step) const;

 private:
  StagedSampleStream() = default;
  std::vector<DataStage> stages_;
  std::vector<std::shared_ptr<const TokenFile>> files_;
  std::vector<int64_t> consumed_;
  StagedStreamOptions options_;
  size_t current_ = SIZE_MAX;
  std::unique_ptr<SampleStream> stream_;
};

}  // namespace strun::data
