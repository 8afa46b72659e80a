#include "data/prepare_command.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>

#include "data/prepare.h"

namespace strun::data {

int PrepareMain(const std::vector<std::string>& args) {
  CLI::App app{"Tokenize text or JSON-lines files into a prepared dataset split for strun-train",
               "strun-train prepare"};
  PrepareOptions o;
  std::string config, sample_by = "line", format = "auto";
  bool quiet = false;
  app.add_option("--input", o.inputs, "Text or JSON-lines files, or directories of them")
      ->required()
      ->expected(1, -1);
  app.add_option(
         "--output", o.output,
         "Dataset name (stored under $STRUN_DATA_HOME) or directory path (absolute, ./ or ../)")
      ->required();
  app.add_option("--config", config, "hf_dataset_config_name the data stands for (default: none)");
  app.add_option("--split", o.split, "Split name")->capture_default_str();
  app.add_option("--tokenizer", o.tokenizer, "tokenizer_name_or_path")->capture_default_str();
  app.add_option("--text-column", o.text_column, "text_column_name for JSON-lines inputs")
      ->capture_default_str();
  app.add_option("--num-workers", o.num_workers, "Tokenizer threads (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--sample-by", sample_by,
                 "Documents of plain-text inputs: line, paragraph or document")
      ->check(CLI::IsMember({"line", "paragraph", "document"}))
      ->capture_default_str();
  app.add_flag("--keep-linebreaks", o.keep_linebreaks,
               "Keep the line break at the end of each line");
  app.add_option("--format", format, "Input format: auto (by extension), text or jsonl")
      ->check(CLI::IsMember({"auto", "text", "jsonl"}))
      ->capture_default_str();
  app.add_flag("--quiet", quiet, "No progress on stderr");

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is success; CLI11's own codes are not ours
  }
  if (!config.empty()) o.config = config;
  o.sample_by = sample_by == "paragraph"  ? SampleBy::kParagraph
                : sample_by == "document" ? SampleBy::kDocument
                                          : SampleBy::kLine;
  o.format = format == "text"    ? InputFormat::kText
             : format == "jsonl" ? InputFormat::kJsonLines
                                 : InputFormat::kAuto;
  o.progress = !quiet;

  Result<PrepareStats> stats = Prepare(o);
  if (!stats) {
    std::fprintf(stderr, "strun-train prepare: error: %s\n", stats.error().message.c_str());
    return 1;
  }
  std::printf("%s\n", fmt::format("prepared {}.{{bin,idx}}: {} documents, {} tokens from {:.1f} MB "
                                  "in {:.1f} s ({:.1f} MB/s on {} workers)",
                                  stats->split_base, stats->documents, stats->tokens,
                                  double(stats->input_bytes) / 1e6, stats->seconds,
                                  double(stats->input_bytes) / 1e6 / std::max(stats->seconds, 1e-9),
                                  stats->workers)
                          .c_str());
  return 0;
}

}  // namespace strun::data
