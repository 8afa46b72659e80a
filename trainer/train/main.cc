// strun-train: nanotron-compatible training from C++ (README.md has the commands).
//
//   strun-train --config-file FILE [--check] [--tensorboard-dir DIR]   train (--check: print the
//                                                                      resolved config and exit)
//   strun-train prepare ...                                            tokenize text (data/)
//   strun-train export-hf --checkpoint DIR --output DIR                Hugging Face Llama
//   strun-train logits --checkpoint DIR --input-ids FILE --output FILE our logits
//
// Exit status: 0 done, 1 failed, 2 usage or config error, 3 the process group could not form.
// Launched by strun or torchrun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK), or alone.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/export_hf.h"
#include "checkpoint/model_config.h"
#include "config/config.h"
#include "config/load_for_training.h"
#include "data/prepare_command.h"
#include "model/pipeline_stage.h"
#include "parallel/process_grid.h"
#include "parallel/torchrun_env.h"
#include "train/tensorboard_log.h"
#include "train/trainer.h"

namespace {

namespace train = strun::train;

// pp > 1: the stages as nanotron splits the model ("stage 0: ..."), or why strun-train cannot run
// that split (model/pipeline_stage.h), before any rendezvous.
strun::Result<std::string> PipelineSplit(const train::Config& config) {
  return strun::model::DescribePipelineSplit(train::ModelConfigFrom(config),
                                             static_cast<int>(config.parallelism.pp));
}

int UsageError(const std::string& who, const std::string& message) {
  std::fprintf(stderr, "%s: %s\nRun 'strun-train --help' for usage.\n", who.c_str(),
               message.c_str());
  return 2;
}

// CLI11's parse errors in strun-train's words (scripts and tests match them).
std::string Describe(const CLI::ParseError& e) {
  const std::string what = e.what();
  // CLI11: "--name: 1 required TEXT missing".
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) &&
      what.find(" required ") != std::string::npos) {
    return what.substr(0, what.find(':')) + " needs a value";
  }
  return what;
}

// The first argument that no option of `app` took, if any.
std::optional<std::string> FirstUnknown(const CLI::App& app) {
  const std::vector<std::string> rest = app.remaining();
  if (rest.empty()) return std::nullopt;
  return rest.front();
}

int Check(const std::string& config_file) {
  auto config = train::LoadForTraining(config_file, std::nullopt);
  if (!config) {
    std::fprintf(stderr, "strun-train: %s\n", config.error().message.c_str());
    return 2;
  }
  const int64_t tp = config->parallelism.tp;
  std::printf("%s", train::DumpConfig(*config).c_str());
  std::printf("# padded vocab size: %lld (tp=%lld)\n",
              static_cast<long long>(train::PaddedVocabSize(config->model, tp)),
              static_cast<long long>(tp));
  std::printf("# parameters: %lld\n",
              static_cast<long long>(train::CountParameters(config->model, tp)));
  // The ranks the config asks for, in nanotron's order (as YAML comments, like the lines above).
  const strun::parallel::GridShape shape{static_cast<int>(config->parallelism.dp),
                                         static_cast<int>(tp),
                                         static_cast<int>(config->parallelism.pp), 1};
  auto grid = strun::parallel::ProcessGrid::Create(shape, shape.world_size());
  if (!grid) {
    std::fprintf(stderr, "strun-train: %s: parallelism: %s\n", config_file.c_str(),
                 grid.error().message.c_str());
    return 2;
  }
  if (config->parallelism.pp > 1) {
    auto split = PipelineSplit(*config);
    if (!split) {
      std::fprintf(stderr, "strun-train: %s: %s\n", config_file.c_str(),
                   split.error().message.c_str());
      return 2;
    }
    std::printf("# pipeline stages: %s\n", split->c_str());
  }
  const std::string table = strun::parallel::DescribeGrid(*grid);
  size_t start = 0;
  while (start < table.size()) {
    size_t end = table.find('\n', start);
    if (end == std::string::npos) end = table.size();
    std::printf("# %s\n", table.substr(start, end - start).c_str());
    start = end + 1;
  }
  return 0;
}

int RunTraining(const std::string& config_file, const std::string& tensorboard_dir) {
  auto env = strun::parallel::ReadTorchrunEnv();
  if (!env) {
    std::fprintf(stderr, "strun-train: %s\n", env.error().message.c_str());
    return 2;
  }
  // Validated once, here: everything after takes the config as given.
  auto config = train::LoadForTraining(config_file, env->world_size);
  if (!config) {
    std::fprintf(stderr, "strun-train: %s\n", config.error().message.c_str());
    return 2;
  }
  if (config->parallelism.pp > 1) {
    if (auto split = PipelineSplit(*config); !split) {
      std::fprintf(stderr, "strun-train: %s: %s\n", config_file.c_str(),
                   split.error().message.c_str());
      return 2;
    }
  }
  train::TrainOptions options;
  options.tensorboard_dir = train::TensorBoardDirectory(tensorboard_dir);
  return train::Train(*config, config_file, *env, options);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Trains a Llama from a nanotron YAML config (data parallel, on CPU or GPUs).",
               "strun-train"};
  app.footer(
      "Started by strun or torchrun (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), or "
      "alone.\nExit status: 0 done, 1 failed, 2 usage or config error, 3 no process group.");
  app.allow_extras();
  std::string config_file, tensorboard_dir;
  bool check = false;
  app.add_option("--config-file", config_file, "nanotron YAML config to train with (required)");
  CLI::Option* tensorboard = app.add_option(
      "--tensorboard-dir", tensorboard_dir,
      "Rank 0 writes TensorBoard event files to DIR/<general.run> (else $STRUN_TENSORBOARD_DIR)");
  app.add_flag("--check", check, "Validate, print the resolved config and parameter count, exit");

  // prepare has its own CLI11 command line (data/prepare_command.h): it gets the rest verbatim.
  CLI::App* prepare = app.add_subcommand("prepare", "Tokenize text into a prepared dataset");
  prepare->prefix_command();
  prepare->set_help_flag();

  std::string checkpoint, output, input_ids;
  CLI::App* export_hf = app.add_subcommand(
      "export-hf",
      "Write a Hugging Face Llama (config.json, model.safetensors) from a checkpoint step "
      "directory or a checkpoints directory with latest.txt");
  export_hf->allow_extras();
  export_hf->add_option("--checkpoint", checkpoint, "Checkpoint (required)");
  export_hf->add_option("--output", output, "Output directory (required)");

  CLI::App* logits = app.add_subcommand(
      "logits", "Our fp32 logits for a safetensors tensor input_ids [B, S], to check exports");
  logits->allow_extras();
  logits->add_option("--checkpoint", checkpoint, "Checkpoint (required)");
  logits->add_option("--input-ids", input_ids, "safetensors file with input_ids (required)");
  logits->add_option("--output", output, "safetensors file to write logits to (required)");
  app.require_subcommand(0, 1);

  // CLI11 reads "--name=" as "--name" without a value and takes the next argument instead; the old
  // command line read an empty value (and said so): keep that.
  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i) {
    const std::string a = argv[i];
    if (a.size() > 3 && a.rfind("--", 0) == 0 && a.back() == '=' && a.find('=') == a.size() - 1) {
      args.emplace_back();
      args.push_back(a.substr(0, a.size() - 1));
    } else {
      args.push_back(a);
    }
  }
  try {
    app.parse(args);  // reversed, as CLI11 takes a vector
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    CLI::App* sub = app.get_subcommands().empty() ? nullptr : app.get_subcommands().front();
    return UsageError(sub ? "strun-train " + sub->get_name() : "strun-train", Describe(e));
  }

  if (prepare->parsed()) return strun::data::PrepareMain(prepare->remaining());
  if (export_hf->parsed()) {
    if (const auto bad = FirstUnknown(*export_hf)) {
      return UsageError("strun-train export-hf", "unknown argument '" + *bad + "'");
    }
    if (checkpoint.empty() || output.empty()) {
      return UsageError("strun-train export-hf", "--checkpoint and --output are required");
    }
    if (auto s = train::ExportHuggingFace(checkpoint, output); !s) {
      std::fprintf(stderr, "strun-train export-hf: %s\n", s.error().message.c_str());
      return 1;
    }
    std::printf("wrote %s/config.json and %s/model.safetensors\n", output.c_str(), output.c_str());
    return 0;
  }
  if (logits->parsed()) {
    if (const auto bad = FirstUnknown(*logits)) {
      return UsageError("strun-train logits", "unknown argument '" + *bad + "'");
    }
    if (checkpoint.empty() || input_ids.empty() || output.empty()) {
      return UsageError("strun-train logits",
                        "--checkpoint, --input-ids and --output are required");
    }
    if (auto s = train::WriteLogits(checkpoint, input_ids, output); !s) {
      std::fprintf(stderr, "strun-train logits: %s\n", s.error().message.c_str());
      return 1;
    }
    return 0;
  }
  if (const auto bad = FirstUnknown(app)) {
    return UsageError("strun-train", "unknown argument '" + *bad + "'");
  }
  if (tensorboard->count() > 0 && tensorboard_dir.empty()) {
    return UsageError("strun-train", "--tensorboard-dir is empty; give a folder");
  }
  if (config_file.empty()) return UsageError("strun-train", "--config-file is required");
  return check ? Check(config_file) : RunTraining(config_file, tensorboard_dir);
}
