#include "train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>  // c10::NoGradGuard: libtorch 2.x's ATen.h no longer brings it
#include <c10/util/Exception.h>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "strun/launcher/progress.h"
#include "train/device.h"
#include "train/metrics.h"
#include "train/setup.h"
#include "train/step.h"
#include "train/stop_request.h"
#include "train/stop_vote.h"

namespace strun::train {
namespace {

using Clock = std::chrono::steady_clock;
using launcher::ProgressPhase;

at::Tensor CpuRngState() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

// Collective: the checkpoint of `step` (the run's current state) under checkpoints_path.
Status SaveAt(Run& run, int64_t step, launcher::ProgressReporter& progress) {
  progress.Report(ProgressPhase::kCheckpoint, step);
  run.save.step = step;
  run.config.general.step = run.meta.last_train_step;
  run.config.general.consumed_train_samples = run.meta.consumed_train_samples;
  run.save.config_yaml = DumpConfig(run.config);
  run.Info0(fmt::format("Saving checkpoint at {}/{}", run.save.checkpoints_path, step));
  CheckpointState st;
  st.metadata = run.meta;
  for (auto& [n, t] : run.llama->NamedParameters()) st.model.emplace_back(n, t);
  for (auto& [n, t] : run.optimizer->StateDict()) st.optimizer.emplace_back(n, t);
  st.optimizer.emplace_back("flat.master", run.shard.Of(run.master));
  st.optimizer_step = run.optimizer->step();
  st.optimizer_type = run.optimizer_type;
  st.scheduler_step = run.meta.last_train_step;
  st.rng_state = CpuRngState();
  return SaveCheckpoint(*run.comm, run.save, st);
}

// Logs "[Training Stage: ...]" when `step` starts a new data stage.
void AnnounceStage(const Run& run, int64_t step, size_t& current_stage) {
  const size_t stage = run.stream->StageFor(step);
  if (stage == current_stage) return;
  if (current_stage != SIZE_MAX) {
    run.Info0(
        fmt::format("[Training Stage: {}] Clearing the previous training stage's dataloader "
                    "and datasets from memory",
                    run.stages[stage].name));
  }
  run.Info0(fmt::format("[Training Stage: {}] start from step {}", run.stages[stage].name, step));
  current_stage = stage;
}

// The step's data position: samples consumed overall and in its stage.
void AdvanceDataPosition(Run& run, int64_t step, size_t stage) {
  run.meta.consumed_train_samples += run.gbs;
  run.meta.last_train_step = step;
  run.meta.last_stage_idx = static_cast<int64_t>(stage);
  run.meta.data_stages[stage].consumed_train_samples += run.gbs;
}

// Nothing of a non-finite step may reach a checkpoint: latest.txt keeps naming the last good one.
std::string NonFiniteMessage(const Run& run, int64_t step, const StepResult& r, int64_t last_saved,
                             int64_t resumed_step) {
  return fmt::format(
      "step {}: lm_loss is {}{}: training stops without writing a checkpoint (the last one "
      "is {}). If resuming from it stops here again, its weights are damaged: resume from an "
      "earlier checkpoint; otherwise training diverged: lower "
      "optimizer.learning_rate_scheduler.learning_rate (or set optimizer.clip_grad) and resume",
      step, r.lm_loss, r.grad_norm ? fmt::format(", grad_norm is {}", *r.grad_norm) : std::string(),
      last_saved < 0 ? std::string("none (this run wrote none yet)")
      : run.resume_dir && last_saved == resumed_step
          ? *run.resume_dir
          : fmt::format("{}/{}", run.save.checkpoints_path, last_saved));
}

// The iteration line (every logging.iteration_step_info_interval steps) and TensorBoard.
Throughput LogStep(Run& run, int64_t step, const StepResult& r, Clock::time_point t0) {
  run.comm->Barrier();
  SynchronizeDevice(run.cuda);
  StepMetrics m;
  m.consumed_train_samples = run.meta.consumed_train_samples;
  m.sequence_length = run.seq;
  m.global_batch_size = run.gbs;
  m.world_size = run.env.world_size;
  m.elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  m.step_flops = run.step_flops;
  m.lm_loss = run.loss_sum.item<double>();
  m.lr = r.lr;
  if (run.clip) m.grad_norm = run.grad_norm.item<double>();
  m.resources = step < 5 || (step - 1) % run.config.checkpoints->checkpoint_interval == 0;
  if (run.cuda && m.resources) m.device_memory = CudaMemory(run.cuda, run.env.local_rank);
  const Throughput t = ThroughputOf(m);
  const std::vector<LogItem> items = IterationItems(m, t);
  run.log.Info(FormatIterationLine(step, run.train_steps, items));
  if (run.tensorboard) run.tensorboard->Step(step, items);
  return t;
}

// nanotron's benchmark CSV row (general.benchmark_csv_path), from rank 0.
Status AppendBenchmark(const Run& run, const Throughput& last) {
  BenchmarkRow row;
  const char* job = std::getenv("SLURM_JOB_ID");
  row.job_id = job ? job : "N/A";
  row.name = run.config.general.run;
  row.seq_len = run.seq;
  row.mbs = run.mbs;
  row.batch_accum = run.n_micro;
  row.gbs = run.gbs;
  row.model_tflops = row.hardware_tflops = last.model_tflops_per_gpu;
  row.tokens_per_sec_per_gpu = last.tokens_per_sec / run.env.world_size;
  const DeviceMemory m = CudaMemory(run.cuda, run.env.local_rank);
  row.mem_alloc_gb = m.max_allocated / (1024.0 * 1024 * 1024);
  row.mem_res_gb = m.max_reserved / (1024.0 * 1024 * 1024);
  return AppendBenchmarkCsv(*run.config.general.benchmark_csv_path, row);
}

int TrainImpl(const Config& config, const std::string& config_path,
              const parallel::TorchrunEnv& env, const TrainOptions& options,
              launcher::ProgressReporter& progress) {
  const bool cuda = UseCuda();
  if (cuda) SetCudaDevice(env.local_rank);
  auto comm = parallel::Communicator::Create(
      env, cuda ? parallel::Communicator::Backend::kNccl : parallel::Communicator::Backend::kGloo,
      std::chrono::seconds(600));
  if (!comm) {
    std::fprintf(stderr, "strun-train: %s\n", comm.error().message.c_str());
    return 3;
  }
  Run run(config, config_path, env, cuda, std::move(*comm));
  auto ready = Setup(run);
  if (!ready) return run.Fail(ready.error().message);
  if (!*ready) {  // the resumed checkpoint is the last step
    run.comm->Barrier();
    return 0;
  }
  const CheckpointsArgs& ckpt = *run.config.checkpoints;
  if (ckpt.save_initial_state && !run.resume_dir) {
    if (auto s = SaveAt(run, 0, progress); !s) return run.Fail(s.error().message);
  }
  run.Info0(StartTrainingLine(run.mbs, run.n_micro, run.gbs, run.seq, run.train_steps,
                              run.meta.last_train_step, run.meta.consumed_train_samples));
  // Rank 0's loss curves (tensorboard_log.h): nothing for the steps the resumed checkpoint has.
  if (run.rank == 0 && !options.tensorboard_dir.empty()) {
    run.tensorboard = TensorBoardLog::Open(options.tensorboard_dir, run.config.general.run,
                                           run.resume_dir ? run.meta.last_train_step : -1,
                                           [&run](const std::string& m) { run.log.Warning(m); });
    if (run.tensorboard) run.tensorboard->Config(DumpConfig(run.config));
  }

  StopVote vote;
  size_t current_stage = SIZE_MAX;
  int64_t last_saved = run.resume_dir ? run.meta.last_train_step : -1;
  const int64_t resumed_step = last_saved;
  Throughput last_throughput;
  for (int64_t step = run.meta.last_train_step + 1; step <= run.train_steps; ++step) {
    const auto t0 = Clock::now();
    AnnounceStage(run, step, current_stage);
    auto r = TrainStep(run, step, vote);
    if (!r) return run.Fail(r.error().message);
    c10::NoGradGuard no_grad;
    if (!std::isfinite(r->lm_loss) || (r->grad_norm && !std::isfinite(*r->grad_norm))) {
      return run.Fail(NonFiniteMessage(run, step, *r, last_saved, resumed_step));
    }
    AdvanceDataPosition(run, step, current_stage);
    progress.Report(ProgressPhase::kTraining, step);
    if (run.log.Enabled(LogLevel::kDebug)) {
      run.log.Log(LogLevel::kDebug,
                  DebugStepLine(step, run.loss_sum.item<double>(),
                                run.clip ? run.grad_norm.item<double>() : 0.0, r->lr));
    }
    if ((step - 1) % run.config.logging->iteration_step_info_interval == 0) {
      last_throughput = LogStep(run, step, *r, t0);
    }
    if (step % ckpt.checkpoint_interval == 0) {
      if (auto s = SaveAt(run, step, progress); !s) return run.Fail(s.error().message);
      last_saved = step;
    }
    if (StopVote::Carried(r->stop_vote, step, run.train_steps)) {
      if (last_saved != step) {
        if (auto s = SaveAt(run, step, progress); !s) return run.Fail(s.error().message);
        last_saved = step;
      }
      progress.Report(ProgressPhase::kPreempted, step);
      run.Info0(fmt::format(
          "Pre-emption ({}): checkpoint of step {} written to {}/{}; exiting so the job can be "
          "requeued",
          StopVote::Reason(), step, ckpt.checkpoints_path, step));
      return 0;
    }
  }
  if (ckpt.save_final_state && last_saved != run.meta.last_train_step &&
      run.meta.last_train_step > 0) {
    if (auto s = SaveAt(run, run.meta.last_train_step, progress); !s) {
      return run.Fail(s.error().message);
    }
  }
  if (run.config.general.benchmark_csv_path && run.rank == 0) {
    if (auto s = AppendBenchmark(run, last_throughput); !s) return run.Fail(s.error().message);
  }
  run.comm->Barrier();
  run.Info0(fmt::format("Training finished at step {} (consumed_train_samples: {})",
                        run.meta.last_train_step, run.meta.consumed_train_samples));
  return 0;
}

}  // namespace

int Train(const Config& config, const std::string& config_path, const parallel::TorchrunEnv& env,
          const TrainOptions& options) {
  // Before anything slow (rendezvous, data, model): the agent's start-up timeout starts now, and a
  // pre-emption signal that comes while loading is answered after the first step.
  launcher::ProgressReporter progress;
  progress.Report(launcher::ProgressPhase::kStartup);
  if (auto s = InstallStopSignalHandlers(); !s) {
    std::fprintf(stderr, "strun-train: %s\n", s.error().message.c_str());
    return 1;
  }
  // libtorch reports failures (a peer that died during a collective, out of memory) as
  // exceptions: print them without the C++ backtrace and exit non-zero.
  try {
    return TrainImpl(config, config_path, env, options, progress);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "strun-train: %s\n", e.what_without_backtrace());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strun-train: %s\n", e.what());
  }
  return 1;
}

}  // namespace strun::train
