// tokenizer/tokenizer_resolve.h: finding a tokenizer by name, as `tokenizer_name_or_path` in the
// config names it.
//
// `name_or_path` is first taken as a path: a tokenizer.json file, or a directory holding
// tokenizer.json, or encoder.json + vocab.bpe (OpenAI's GPT-2 files), or vocab.json + merges.txt
// (Hugging Face's). Otherwise it is a name (e.g. "gpt2", "openai-community/gpt2") looked up in
// these directories, first found wins:
//   1. each directory of $STRUN_TOKENIZER_PATH (':'-separated): DIR/<name>/
//   2. the project's data directories: <source tree>/etc/data/tokenizers/<name>/ (filled by
//      etc/setup/fetch-tokenizer.sh) and <install prefix>/share/strun/tokenizers/<name>/
//   3. the Hugging Face hub cache: $HF_HUB_CACHE, else $HF_HOME/hub, else
//      ~/.cache/huggingface/hub: models--<name with '/' as '--'>/snapshots/*/ (what
//      AutoTokenizer.from_pretrained downloaded)
// Within a directory the files are tried in the order listed above.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "strun/result.h"
#include "tokenizer/bpe_tokenizer.h"

namespace strun::tokenizer {

// The directories searched for a name, in order (existing or not), for messages and tests.
std::vector<std::string> TokenizerSearchPath(std::string_view name);

// Loads the tokenizer `name_or_path` names; the error lists every place that was searched and
// says how to fetch GPT-2's files.
Result<Tokenizer> LoadTokenizer(std::string_view name_or_path);

// Loads from one directory or tokenizer.json file (no search).
Result<Tokenizer> LoadTokenizerFrom(const std::string& path);

}  // namespace strun::tokenizer
