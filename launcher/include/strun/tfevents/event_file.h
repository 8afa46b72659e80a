// strun/tfevents/event_file.h: one TensorBoard event file (events.out.tfevents.*), append-only.
//
// Records are built in memory by the Add* calls and reach the file with one write(2) per Flush,
// without fsync: a process that crashes after Flush loses nothing (the page cache has it), and a
// slow disk costs the caller no sync. The first record is the Event with file_version
// "brain.Event:2". Messages: src/tfevents/event.proto; framing: record_writer.h.
//
// Readers: TensorBoard (`tensorboard --logdir DIR`; each folder holding event files is a run),
// `wandb sync --sync-tensorboard DIR`. Library strun_tfevents (launcher/), linked by strun-train
// and strund; it needs libprotobuf-lite, not libtorch or Slurm.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::tfevents {

struct Scalar {
  std::string tag;
  double value = 0;  // stored as TensorBoard's float simple_value
};

class EventFile {
 public:
  // Creates `dir` (and its parents) and in it events.out.tfevents.<now>.<host>.<pid>.<suffix>,
  // then writes the file_version record. Errors name the path and the cause.
  static Result<std::unique_ptr<EventFile>> Create(const std::string& dir,
                                                   const std::string& suffix, double now);
  ~EventFile();
  EventFile(const EventFile&) = delete;
  EventFile& operator=(const EventFile&) = delete;

  // One Event with one simple_value per scalar.
  void AddScalars(int64_t step, const std::vector<Scalar>& scalars, double wall_time);
  // One Event with a text summary (TensorBoard's text plugin renders `markdown`).
  void AddText(int64_t step, const std::string& tag, const std::string& markdown, double wall_time);
  // SessionLog START at `step`: TensorBoard drops the values of steps >= `step` that it read
  // earlier in the run (those a crashed run logged after the checkpoint this one resumed from).
  void AddSessionStart(int64_t step, double wall_time);

  // Writes what the Add* calls built since the last Flush in one write(2). Errors name the file.
  Status Flush();
  const std::string& path() const { return path_; }

 private:
  EventFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
  std::string pending_;  // framed records not yet written
};

// Markdown that shows `text` verbatim (a code block), for AddText.
std::string MarkdownCodeBlock(const std::string& text);

}  // namespace strun::tfevents
