// strun-train: nanotron-compatible training from C++.
//
//   strun-train --config-file FILE [--check]      train (or print the resolved config and exit)
//   strun-train prepare ...                        tokenize text into a prepared dataset
//   strun-train export-hf --checkpoint DIR --output DIR
//
// Launched by strun or torchrun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK), or alone.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/prepare_command.h"
#include "tensorboard_log.h"
#include "trainer.h"

namespace {

constexpr const char* kUsage =
    "usage: strun-train --config-file FILE [--check] [--tensorboard-dir DIR]\n"
    "       strun-train prepare --help\n"
    "       strun-train export-hf --checkpoint DIR --output DIR\n"
    "       strun-train logits --checkpoint DIR --input-ids FILE --output FILE\n";

// Reads "--name VALUE" or "--name=VALUE"; returns false (and complains) when VALUE is missing.
bool TakeValue(const std::vector<std::string>& args, size_t& i, const std::string& name,
               std::string& out) {
  const std::string& a = args[i];
  if (a == name) {
    if (i + 1 >= args.size()) {
      std::fprintf(stderr, "strun-train: %s needs a value\n%s", name.c_str(), kUsage);
      return false;
    }
    out = args[++i];
    return true;
  }
  out = a.substr(name.size() + 1);
  return true;
}

bool Matches(const std::string& a, const std::string& name) {
  return a == name || a.rfind(name + "=", 0) == 0;
}

int ExportMain(const std::vector<std::string>& args) {
  std::string checkpoint, output;
  for (size_t i = 0; i < args.size(); ++i) {
    if (Matches(args[i], "--checkpoint")) {
      if (!TakeValue(args, i, "--checkpoint", checkpoint)) return 2;
    } else if (Matches(args[i], "--output")) {
      if (!TakeValue(args, i, "--output", output)) return 2;
    } else if (args[i] == "-h" || args[i] == "--help") {
      std::printf("usage: strun-train export-hf --checkpoint DIR --output DIR\n"
                  "Writes a Hugging Face Llama (config.json, model.safetensors) from a checkpoint\n"
                  "step directory or a checkpoints directory with latest.txt.\n");
      return 0;
    } else {
      std::fprintf(stderr, "strun-train export-hf: unknown argument '%s'\n%s", args[i].c_str(), kUsage);
      return 2;
    }
  }
  if (checkpoint.empty() || output.empty()) {
    std::fprintf(stderr, "strun-train export-hf: --checkpoint and --output are required\n%s", kUsage);
    return 2;
  }
  if (auto s = strun::train::ExportHuggingFace(checkpoint, output); !s) {
    std::fprintf(stderr, "strun-train export-hf: %s\n", s.error().message.c_str());
    return 1;
  }
  std::printf("wrote %s/config.json and %s/model.safetensors\n", output.c_str(), output.c_str());
  return 0;
}

int LogitsMain(const std::vector<std::string>& args) {
  std::string checkpoint, ids, output;
  for (size_t i = 0; i < args.size(); ++i) {
    if (Matches(args[i], "--checkpoint")) {
      if (!TakeValue(args, i, "--checkpoint", checkpoint)) return 2;
    } else if (Matches(args[i], "--input-ids")) {
      if (!TakeValue(args, i, "--input-ids", ids)) return 2;
    } else if (Matches(args[i], "--output")) {
      if (!TakeValue(args, i, "--output", output)) return 2;
    } else {
      std::fprintf(stderr, "strun-train logits: unknown argument '%s'\n%s", args[i].c_str(), kUsage);
      return 2;
    }
  }
  if (checkpoint.empty() || ids.empty() || output.empty()) {
    std::fprintf(stderr, "strun-train logits: --checkpoint, --input-ids and --output are required\n%s", kUsage);
    return 2;
  }
  if (auto s = strun::train::WriteLogits(checkpoint, ids, output); !s) {
    std::fprintf(stderr, "strun-train logits: %s\n", s.error().message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "prepare") {
    return strun::data::PrepareMain(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  if (!args.empty() && args[0] == "export-hf") {
    return ExportMain(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  if (!args.empty() && args[0] == "logits") {
    return LogitsMain(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  std::string config_file;
  std::string tensorboard_dir;  // else STRUN_TENSORBOARD_DIR (TensorBoardDirectory)
  bool check = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (Matches(args[i], "--config-file")) {
      if (!TakeValue(args, i, "--config-file", config_file)) return 2;
    } else if (Matches(args[i], "--tensorboard-dir")) {
      if (!TakeValue(args, i, "--tensorboard-dir", tensorboard_dir)) return 2;
      if (tensorboard_dir.empty()) {
        std::fprintf(stderr, "strun-train: --tensorboard-dir is empty; give a folder\n%s", kUsage);
        return 2;
      }
    } else if (args[i] == "--check") {
      check = true;
    } else if (args[i] == "-h" || args[i] == "--help") {
      std::printf("%s", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "strun-train: unknown argument '%s'\n%s", args[i].c_str(), kUsage);
      return 2;
    }
  }
  if (config_file.empty()) {
    std::fprintf(stderr, "strun-train: --config-file is required\n%s", kUsage);
    return 2;
  }
  auto config = strun::train::LoadConfig(config_file);
  if (!config) {
    std::fprintf(stderr, "strun-train: %s\n", config.error().message.c_str());
    return 2;
  }
  if (check) {
    if (auto s = strun::train::ValidateForTraining(*config); !s) {
      std::fprintf(stderr, "strun-train: %s: %s\n", config_file.c_str(), s.error().message.c_str());
      return 2;
    }
    const int64_t tp = config->parallelism.tp;
    std::printf("%s", strun::train::DumpConfig(*config).c_str());
    std::printf("# padded vocab size: %lld (tp=%lld)\n",
                static_cast<long long>(strun::train::PaddedVocabSize(config->model, tp)),
                static_cast<long long>(tp));
    std::printf("# parameters: %lld\n",
                static_cast<long long>(strun::train::CountParameters(config->model, tp)));
    return 0;
  }
  strun::train::TrainOptions options;
  options.tensorboard_dir = strun::train::TensorBoardDirectory(tensorboard_dir);
  return strun::train::Train(*config, config_file, options);
}
