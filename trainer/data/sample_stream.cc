#include "data/sample_stream.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "data/sampler.h"

namespace strun::data {

// Builds micro-batches ahead of Next() on its own thread.
struct SampleStream::Prefetcher {
  std::shared_ptr<const TokenFile> file;
  std::vector<int64_t> rank_starts;  // first token of this rank's samples, in order
  int64_t sample_tokens = 0;
  int64_t micro_batch_size = 1;
  size_t depth = 4;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::vector<int32_t>> ready;
  bool stop = false;
  std::thread thread;

  void Run(int64_t first) {
    for (int64_t k = first; k + micro_batch_size <= int64_t(rank_starts.size());
         k += micro_batch_size) {
      std::vector<int32_t> batch(size_t(micro_batch_size * sample_tokens));
      for (int64_t b = 0; b < micro_batch_size; ++b) {
        file->Read(rank_starts[size_t(k + b)], sample_tokens, batch.data() + b * sample_tokens);
      }
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return stop || ready.size() < depth; });
      if (stop) return;
      ready.push_back(std::move(batch));
      cv.notify_all();
    }
  }

  ~Prefetcher() {
    {
      std::lock_guard lock(mu);
      stop = true;
    }
    cv.notify_all();
    if (thread.joinable()) thread.join();
  }
};

Result<std::unique_ptr<SampleStream>> SampleStream::Open(const std::string& split_base,
                                                         const SampleStreamOptions& options) {
  Result<TokenFile> file = TokenFile::Open(split_base);
  if (!file) return file.error();
  return Open(std::make_shared<const TokenFile>(std::move(*file)), options);
}

Result<std::unique_ptr<SampleStream>> SampleStream::Open(std::shared_ptr<const TokenFile> file,
                                                         const SampleStreamOptions& o) {
  if (o.sequence_length <= 0)
    return MakeError(
        fmt::format("tokens.sequence_length must be positive, got {}", o.sequence_length));
  if (o.micro_batch_size <= 0)
    return MakeError(
        fmt::format("tokens.micro_batch_size must be positive, got {}", o.micro_batch_size));
  if (o.dp_size <= 0 || o.dp_rank < 0 || o.dp_rank >= o.dp_size)
    return MakeError(fmt::format("invalid data-parallel rank {} of {}", o.dp_rank, o.dp_size));
  if (o.consumed_train_samples < 0)
    return MakeError(fmt::format("consumed_train_samples must not be negative, got {}",
                                 o.consumed_train_samples));
  if (o.max_vocab_size && file->header().vocab_size > *o.max_vocab_size) {
    return MakeError(fmt::format(
        "'{}.idx' was prepared with tokenizer '{}' of {} ids, more than the model's vocab_size {}; "
        "prepare it with the config's tokenizer or raise model_config.vocab_size",
        file->base(), file->header().tokenizer, file->header().vocab_size, *o.max_vocab_size));
  }
  std::unique_ptr<SampleStream> s(new SampleStream());
  s->file_ = std::move(file);
  s->options_ = o;
  const std::vector<int64_t> starts =
      ClmSampleStarts(s->file_->document_offsets(), {o.sequence_length, o.num_proc});
  s->num_samples_ = int64_t(starts.size());
  const RankSampler sampler(s->num_samples_, o.seed, o.dp_rank, o.dp_size);
  s->per_rank_ = sampler.size();
  s->next_sample_ = o.consumed_train_samples / o.dp_size;  // nanotron's SkipBatchSampler

  auto p = std::make_unique<Prefetcher>();
  p->file = s->file_;
  p->rank_starts.resize(size_t(s->per_rank_));
  for (int64_t k = 0; k < s->per_rank_; ++k) p->rank_starts[size_t(k)] = starts[size_t(sampler[k])];
  p->sample_tokens = o.sequence_length + 1;
  p->micro_batch_size = o.micro_batch_size;
  p->depth = size_t(std::max(o.prefetch, 1));
  Prefetcher* raw = p.get();
  const int64_t first = s->next_sample_;
  p->thread = std::thread([raw, first] { raw->Run(first); });
  s->prefetcher_ = std::move(p);
  return s;
}

SampleStream::~SampleStream() = default;

int64_t SampleStream::micro_batches_left() const {
  return std::max<int64_t>(per_rank_ - next_sample_, 0) / options_.micro_batch_size;
}

Result<std::vector<int32_t>> SampleStream::Next() {
  if (micro_batches_left() == 0) {
    return MakeError(fmt::format(
        "'{}' has no samples left for data-parallel rank {}: {} samples of {} tokens over {} ranks "
        "give each {} ({} consumed); lower tokens.train_steps or prepare more data",
        file_->base(), options_.dp_rank, num_samples_, options_.sequence_length + 1,
        options_.dp_size, per_rank_, next_sample_));
  }
  Prefetcher& p = *prefetcher_;
  std::unique_lock lock(p.mu);
  p.cv.wait(lock, [&] { return !p.ready.empty(); });
  std::vector<int32_t> batch = std::move(p.ready.front());
  p.ready.pop_front();
  p.cv.notify_all();
  next_sample_ += options_.micro_batch_size;
  return batch;
}

std::vector<int64_t> ConsumedSamplesPerStage(const std::vector<int64_t>& starts,
                                             int64_t completed_steps, int64_t global_batch_size) {
  std::vector<int64_t> consumed(starts.size(), 0);
  for (size_t i = 0; i < starts.size(); ++i) {
    const int64_t last =
        i + 1 < starts.size() ? std::min(completed_steps, starts[i + 1] - 1) : completed_steps;
    consumed[i] = std::max<int64_t>(last - starts[i] + 1, 0) * global_batch_size;
  }
  return consumed;
}

Result<std::unique_ptr<StagedSampleStream>> StagedSampleStream::Open(
    std::vector<DataStage> stages, const StagedStreamOptions& options,
    std::vector<int64_t> consumed_per_stage) {
  if (stages.empty())
    return MakeError("data_stages is empty: give at least one stage with a dataset");
  for (size_t i = 0; i < stages.size(); ++i) {
    if (stages[i].start_training_step < 1)
      return MakeError(
          fmt::format("data_stages[{}] ('{}'): start_training_step must be >= 1, got {}", i,
                      stages[i].name, stages[i].start_training_step));
    if (i > 0 && stages[i].start_training_step <= stages[i - 1].start_training_step) {
      return MakeError(fmt::format(
          "data_stages[{}] ('{}'): start_training_step {} must be greater than the previous "
          "stage's {}",
          i, stages[i].name, stages[i].start_training_step, stages[i - 1].start_training_step));
    }
  }
  if (consumed_per_stage.empty()) consumed_per_stage.assign(stages.size(), 0);
  if (consumed_per_stage.size() != stages.size())
    return MakeError(fmt::format("{} consumed-sample counts given for {} data stages",
                                 consumed_per_stage.size(), stages.size()));
  std::unique_ptr<StagedSampleStream> s(new StagedSampleStream());
  for (const DataStage& stage : stages) {
    Result<TokenFile> f = TokenFile::Open(stage.split_base);
    if (!f) return MakeError(fmt::format("data stage '{}': {}", stage.name, f.error().message));
    if (options.max_vocab_size && f->header().vocab_size > *options.max_vocab_size) {
      return MakeError(
          fmt::format("data stage '{}': '{}.idx' was prepared with tokenizer '{}' of {} ids, more "
                      "than the model's vocab_size {}; prepare it with the config's tokenizer",
                      stage.name, stage.split_base, f->header().tokenizer, f->header().vocab_size,
                      *options.max_vocab_size));
    }
    s->files_.push_back(std::make_shared<const TokenFile>(std::move(*f)));
  }
  s->stages_ = std::move(stages);
  s->consumed_ = std::move(consumed_per_stage);
  s->options_ = options;
  return s;
}

size_t StagedSampleStream::StageFor(int64_t step) const {
  size_t idx = 0;
  for (size_t i = 0; i < stages_.size(); ++i) {
    if (stages_[i].start_training_step <= step) idx = i;
  }
  return idx;
}

Result<std::vector<int32_t>> StagedSampleStream::Next(int64_t step) {
  const size_t idx = StageFor(step);
  if (step < stages_[idx].start_training_step)
    return MakeError(fmt::format(
        "training step {} comes before the first data stage ('{}', start_training_step {})", step,
        stages_[idx].name, stages_[idx].start_training_step));
  if (idx != current_) {
    stream_.reset();
    SampleStreamOptions o;
    o.sequence_length = options_.sequence_length;
    o.micro_batch_size = options_.micro_batch_size;
    o.dp_rank = options_.dp_rank;
    o.dp_size = options_.dp_size;
    o.seed = stages_[idx].seed;
    o.num_proc = stages_[idx].num_proc;
    o.consumed_train_samples = consumed_[idx];
    o.prefetch = options_.prefetch;
    o.max_vocab_size = options_.max_vocab_size;
    Result<std::unique_ptr<SampleStream>> opened = SampleStream::Open(files_[idx], o);
    if (!opened)
      return MakeError(
          fmt::format("data stage '{}': {}", stages_[idx].name, opened.error().message));
    stream_ = std::move(*opened);
    current_ = idx;
  }
  Result<std::vector<int32_t>> batch = stream_->Next();
  if (!batch)
    return MakeError(fmt::format("data stage '{}' at step {}: {}", stages_[idx].name, step,
                                 batch.error().message));
  consumed_[idx] += options_.micro_batch_size * options_.dp_size;
  return batch;
}

Status StagedSampleStream::CheckSufficient(int64_t last_step,
                                           int64_t micro_batches_per_step) const {
  for (size_t i = 0; i < stages_.size(); ++i) {
    const int64_t begin = stages_[i].start_training_step;
    const int64_t end = i + 1 < stages_.size()
                            ? std::min(last_step, stages_[i + 1].start_training_step - 1)
                            : last_step;
    const int64_t steps = std::max<int64_t>(end - begin + 1, 0);
    if (steps == 0) continue;
    const std::vector<int64_t> starts = ClmSampleStarts(
        files_[i]->document_offsets(), {options_.sequence_length, stages_[i].num_proc});
    const int64_t per_rank = int64_t(starts.size()) / options_.dp_size;
    const int64_t available_steps = per_rank / options_.micro_batch_size / micro_batches_per_step;
    if (available_steps < steps) {
      return MakeError(fmt::format(
          "data stage '{}' is too small: '{}' gives {} samples of {} tokens, enough for {} steps "
          "of {} samples, but the stage runs {} steps "
          "(steps {}..{}); set tokens.train_steps <= {} or prepare more data",
          stages_[i].name, stages_[i].split_base, starts.size(), options_.sequence_length + 1,
          available_steps, options_.micro_batch_size * micro_batches_per_step * options_.dp_size,
          steps, begin, end, begin + available_steps - 1));
    }
  }
  return {};
}

}  // namespace strun::data
