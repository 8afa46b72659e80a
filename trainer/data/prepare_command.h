// data/prepare_command.h: `strun-train prepare`, the command line of data/prepare.h.
//
//   strun-train prepare --input FILE_OR_DIR... --output NAME_OR_DIR [options]
//
//   --input PATH...        text or JSON-lines files, or directories of them (required)
//   --output NAME|DIR      a dataset name, stored at $STRUN_DATA_HOME (default
//                          ~/.cache/strun/datasets)/NAME/CONFIG/SPLIT.{bin,idx}, where
//                          `hf_dataset_or_datasets: NAME` finds it; or a directory path (absolute,
//                          ./ or ../), written as DIR/SPLIT.{bin,idx} (required)
//   --config NAME          the hf_dataset_config_name it stands for (default: "default", i.e. null)
//   --split NAME           the split it holds (default: train, the one training reads)
//   --tokenizer NAME|PATH  tokenizer_name_or_path (default: gpt2)
//   --text-column KEY      text_column_name for JSON-lines inputs (default: text)
//   --num-workers N        tokenizer threads (default: all online cores)
//   --sample-by line|paragraph|document   documents of plain-text inputs (default: line)
//   --keep-linebreaks      keep the "\n" at the end of each line (line mode)
//   --format auto|text|jsonl              input format (default: auto, by extension)
//   --quiet                no progress on stderr
//
// Example, the tutorial's dataset from WikiText-103's raw training file:
//   strun-train prepare --input wiki.train.raw --output wikitext --config wikitext-103-v1
//   --keep-linebreaks
#pragma once

#include <string>
#include <vector>

namespace strun::data {

// Runs the command; `args` are the arguments after "prepare". Returns the exit status (0 done,
// 1 failed, 2 bad command line), having printed a summary to stdout or the error to stderr.
int PrepareMain(const std::vector<std::string>& args);

}  // namespace strun::data
