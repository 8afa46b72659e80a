// data/prepare.h: tokenizing text into a prepared dataset split (token_file.h), on all cores.
//
// Inputs are plain text or JSON-lines files (or directories of them: their *.txt, *.text,
// *.tokens, *.raw, *.jsonl, *.json and extension-less files, recursively, sorted by path). Each
// input yields documents (the rows of the dataset nanotron would load), in input order:
//   - JSON-lines: one document per non-blank line, the string in `text_column` (as
//     datasets.load_dataset("json") with text_column_name);
//   - plain text, like datasets.load_dataset("text", sample_by=...):
//       kLine (default)  one document per line (\n, \r\n or \r ends a line), without the line
//                        break unless keep_linebreaks (then it ends in "\n"); empty lines are
//                        empty documents (they still count as rows for nanotron's grouping);
//       kParagraph       the file split on "\n\n", empty pieces dropped;
//       kDocument        the whole file is one document.
// Documents are tokenized as Hugging Face's GPT-2 tokenizer does in nanotron (no EOS appended;
// the text "<|endoftext|>" becomes the EOS id) and stored with their boundaries.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::data {

enum class SampleBy { kLine, kParagraph, kDocument };
enum class InputFormat { kAuto, kText, kJsonLines };  // kAuto: .jsonl/.json are JSON-lines

struct PrepareOptions {
  std::vector<std::string> inputs;
  // A store name (dataset_store.h: <store>/<output>/<config>/<split>.*) or, when path-like
  // (absolute, ./ or ../), a directory (<output>/<split>.*).
  std::string output;
  std::optional<std::string> config;  // hf_dataset_config_name the split belongs to
  std::string split = "train";
  std::string tokenizer = "gpt2";  // tokenizer_name_or_path (tokenizer/tokenizer_resolve.h)
  std::string text_column = "text";
  int num_workers = 0;  // 0: one per online core
  SampleBy sample_by = SampleBy::kLine;
  bool keep_linebreaks = false;
  InputFormat format = InputFormat::kAuto;
  // Progress on stderr: a bar redrawn in place on a terminal, else a line every 5 seconds.
  bool progress = true;
};

struct PrepareStats {
  std::string split_base;  // where the split was written (without .bin/.idx)
  int64_t documents = 0;
  int64_t tokens = 0;
  int64_t input_bytes = 0;
  double seconds = 0;
  int workers = 0;
};

Result<PrepareStats> Prepare(const PrepareOptions& options);

}  // namespace strun::data
