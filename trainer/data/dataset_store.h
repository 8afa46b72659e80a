// data/dataset_store.h: where prepared datasets live, and how a config's dataset names one.
//
// nanotron loads `hf_dataset_or_datasets` with datasets.load_dataset(name, hf_dataset_config_name,
// split=...) and trains on its "train" split. strun-train downloads nothing: the name resolves to
// a prepared split (token_file.h) in this order:
//   1. a local directory of that name (absolute, or relative to the working directory) holding
//      <config>/<split>.idx or <split>.idx;
//   2. the dataset store: $STRUN_DATA_HOME, else $XDG_CACHE_HOME/strun/datasets, else
//      ~/.cache/strun/datasets, at <store>/<name>/<config>/<split>.idx (<config> is
//      hf_dataset_config_name, or "default" when null).
// `strun-train prepare --output <name> [--config <config>] [--split <split>]` writes to the store;
// `--output <dir>` (a path: absolute or starting with ./ or ../) writes <dir>/<split>.*.
// The tutorial's `hf_dataset_or_datasets: wikitext` + `hf_dataset_config_name: wikitext-103-v1`
// therefore reads <store>/wikitext/wikitext-103-v1/train.idx.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::data {

// The store's root directory (see above).
std::string DataHome();

// True when `output` names a directory rather than a store name.
bool IsPathLike(const std::string& output);

// <DataHome()>/<name>/<config or "default">.
std::string StoreDirectory(const std::string& name, const std::optional<std::string>& config);

// The base path (without .bin/.idx) of the prepared split nanotron would train on: "train", which
// must be among `splits` as it must for nanotron. The error says where it looked and gives the
// prepare command to run.
Result<std::string> ResolvePreparedDataset(const std::string& hf_dataset_or_datasets,
                                           const std::optional<std::string>& config_name,
                                           const std::vector<std::string>& splits);

}  // namespace strun::data
