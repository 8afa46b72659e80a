#include "strun/daemon/tensorboard_events.h"

#include <algorithm>

#include "strun/tfevents/event_file.h"

namespace strun::daemon {

Result<std::unique_ptr<TensorBoardEvents>> TensorBoardEvents::Open(const std::string& dir,
                                                                   const std::string& job_id,
                                                                   int64_t lines_before,
                                                                   double now) {
  auto file = tfevents::EventFile::Create(dir + "/strund_" + job_id, "strund", now);
  if (!file) return file.error();
  return std::unique_ptr<TensorBoardEvents>(new TensorBoardEvents(std::move(*file), lines_before));
}

TensorBoardEvents::TensorBoardEvents(std::unique_ptr<tfevents::EventFile> file,
                                     int64_t lines_before)
    : file_(std::move(file)), lines_(lines_before) {}

TensorBoardEvents::~TensorBoardEvents() = default;

const std::string& TensorBoardEvents::path() const { return file_->path(); }

Status TensorBoardEvents::Add(const nlohmann::json& line, const AccountingSummary& totals) {
  ++lines_;
  const std::string event = line.value("event", "");
  if (event == "progress") return {};
  const double time =
      line.contains("time") && line["time"].is_number() ? line["time"].get<double>() : 0.0;
  file_->AddText(lines_, "strund/events",
                 "**" + event + "**\n\n" + tfevents::MarkdownCodeBlock(line.dump()), time);
  file_->AddScalars(std::max<int64_t>(0, totals.high_water_step),
                    {{"strund/restarts", double(totals.restarts)},
                     {"strund/relaunches", double(totals.relaunches)},
                     {"strund/requeues", double(totals.requeues)},
                     {"strund/nodes_excluded", double(totals.nodes_excluded)},
                     {"strund/faults", double(totals.faults)},
                     {"strund/time_lost_s", totals.lost_s},
                     {"strund/goodput", totals.goodput}},
                    time);
  return file_->Flush();
}

}  // namespace strun::daemon
