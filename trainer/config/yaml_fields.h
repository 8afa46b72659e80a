// config/yaml_fields.h (internal): typed, strict access to the keys of one YAML mapping.
//
// A Fields object wraps one mapping of the config file. Each Get* call reads one key, converts its
// value with the typing rules of nanotron's loader (PyYAML + dacite, strict) and remembers the key
// as known; Finish() then rejects every key no one asked for, naming its full path and suggesting
// the closest known key. Errors are thrown as ConfigError inside the parser only and turned into a
// strun::Error at the ParseConfig boundary.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace strun::train::yaml_fields {

// A user-facing parse error; what() is the full message ("cfg.yaml:12: ...").
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where a node is: the source name for messages and the dotted key path ("model.model_config").
struct Where {
  const std::string* source;
  std::string path;
  int line = 0;  // line of the key that introduces this node (0: use the node's own line)

  std::string Child(const std::string& key) const { return path.empty() ? key : path + "." + key; }
  std::string Index(size_t i) const { return path + "[" + std::to_string(i) + "]"; }
  [[noreturn]] void Fail(const YAML::Node& node, const std::string& message) const;
};

// Scalar conversions (PyYAML-compatible where it matters). Each throws ConfigError naming `key`.
// Absent (undefined) or null (~, null, empty).
bool IsAbsent(const YAML::Node& node);
int64_t ToInt(const YAML::Node& node, const Where& where, const std::string& key);
double ToFloat(const YAML::Node& node, const Where& where, const std::string& key);
bool ToBool(const YAML::Node& node, const Where& where, const std::string& key);
std::string ToString(const YAML::Node& node, const Where& where, const std::string& key);

// Line (1-based) of a node for messages; 0 where yaml-cpp has none.
int LineOf(const YAML::Node& node);

class Fields {
 public:
  // `node` must be a mapping; `what` names the section in messages ("the model section").
  Fields(const YAML::Node& node, Where where, const std::string& what);

  const Where& where() const { return where_; }
  const YAML::Node& node() const { return node_; }

  // Whether `key` is present (null counts as present). Marks it known.
  bool Has(const std::string& key);
  // The value of `key` (an undefined node when absent). Marks it known.
  YAML::Node Get(const std::string& key);
  // Whether `key` is present and not null. Marks it known.
  bool HasValue(const std::string& key);

  // Required keys: absent or null is an error.
  int64_t RequiredInt(const std::string& key);
  double RequiredFloat(const std::string& key);
  bool RequiredBool(const std::string& key);
  std::string RequiredString(const std::string& key);

  // Keys with a default: absent or null keeps *out.
  void Int(const std::string& key, int64_t* out);
  void Float(const std::string& key, double* out);
  void Bool(const std::string& key, bool* out);
  void String(const std::string& key, std::string* out);

  // Optional keys: absent or null gives nullopt.
  void OptInt(const std::string& key, std::optional<int64_t>* out);
  void OptFloat(const std::string& key, std::optional<double>* out);
  void OptBool(const std::string& key, std::optional<bool>* out);
  void OptString(const std::string& key, std::optional<std::string>* out);

  // A missing required key (for callers that read the value themselves).
  [[noreturn]] void FailMissing(const std::string& key) const;
  // An error about the value of `key`.
  [[noreturn]] void FailValue(const std::string& key, const std::string& message);
  // An error about this mapping as a whole, at the line of its key.
  [[noreturn]] void FailHere(const std::string& message) const;
  // The Where of the value of `key` (for nested mappings and lists).
  Where ChildWhere(const std::string& key) const;

  // Declares the keys this mapping accepts and rejects any other at once, naming its path and
  // suggesting the closest accepted key. Call first, so a typo is reported as such rather than
  // as a missing key.
  void Expect(std::initializer_list<const char*> keys);

  // Rejects keys not asked for (by Expect or a Get*), suggesting the closest asked-for key.
  void Finish() const;

  // Names present in the mapping, in file order (duplicates: last occurrence wins, as PyYAML).
  std::vector<std::string> Keys() const;

 private:
  struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
  };
  const Entry* Find(const std::string& key) const;

  YAML::Node node_;
  Where where_;
  std::string what_;
  std::vector<Entry> entries_;
  std::set<std::string> asked_;
};

// The closest of `candidates` to `word` by edit distance, or "" when none is close.
std::string Suggest(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace strun::train::yaml_fields
