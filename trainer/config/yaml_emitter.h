// config/yaml_emitter.h (internal): a small YAML tree and a writer in PyYAML's default block style
// (yaml.dump: keys sorted, sequences not indented under their key, 2-space indentation), so that a
// dumped config reads like the config.yaml nanotron writes into its checkpoints.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace strun::train::yaml_emitter {

class Value {
 public:
  static Value Null() { return Value(Kind::kScalar, "null"); }
  static Value String(const std::string& s);
  static Value Int(int64_t v);
  static Value Float(double v);
  static Value Bool(bool v) { return Value(Kind::kScalar, v ? "true" : "false"); }
  static Value Map(bool sorted = true) {
    Value v(Kind::kMap, "");
    v.sorted_ = sorted;
    return v;
  }
  static Value List() { return Value(Kind::kList, ""); }

  template <typename T, typename F>
  static Value Optional(const std::optional<T>& o, F make) {
    return o ? make(*o) : Null();
  }

  // Map: adds a key. List: appends (key ignored).
  Value& Set(const std::string& key, Value value);
  Value& Append(Value value);

  // The YAML document for this value (a mapping at the top).
  std::string Emit() const;

 private:
  enum class Kind { kScalar, kMap, kList };
  Value(Kind kind, std::string text) : kind_(kind), text_(std::move(text)) {}

  void EmitMap(int indent, bool first_inline, std::string* out) const;
  void EmitList(int indent, bool first_inline, std::string* out) const;
  void EmitAfterKey(int indent, std::string* out) const;

  Kind kind_;
  std::string text_;  // scalars: the formatted YAML text
  bool sorted_ = true;
  std::vector<std::pair<std::string, Value>> items_;  // maps: key/value; lists: "" / value
};

// Python's repr of a float, as PyYAML writes it ("0.001", "1.0e-05", ".inf").
std::string FormatFloat(double v);
// A string as a YAML scalar: plain where PyYAML and yaml-cpp read it back as the same string,
// quoted otherwise.
std::string QuoteString(const std::string& s);

}  // namespace strun::train::yaml_emitter
