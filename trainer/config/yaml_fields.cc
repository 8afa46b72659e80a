#include "config/yaml_fields.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <regex>

namespace strun::train::yaml_fields {
namespace {

// yaml-cpp tags plain (unquoted) scalars "?" and quoted ones "!". PyYAML resolves only plain
// scalars to numbers, booleans and null; a quoted "5" is a string.
bool IsPlain(const YAML::Node& node) { return node.Tag() == "?" || node.Tag().empty(); }

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return IsPlain(node) ? fmt::format("'{}'", node.Scalar())
                           : fmt::format("the quoted string \"{}\"", node.Scalar());
    default:
      return "nothing";
  }
}

[[noreturn]] void WrongType(const YAML::Node& node, const Where& where, const std::string& key,
                            const char* expected) {
  where.Fail(node,
             fmt::format("{}: expected {}, got {}", where.Child(key), expected, Describe(node)));
}

// YAML 1.1 booleans as PyYAML resolves them.
std::optional<bool> ParseBool(const std::string& s) {
  static const char* const kTrue[] = {"true", "True", "TRUE", "yes", "Yes",
                                      "YES",  "on",   "On",   "ON"};
  static const char* const kFalse[] = {"false", "False", "FALSE", "no", "No",
                                       "NO",    "off",   "Off",   "OFF"};
  for (const char* t : kTrue) {
    if (s == t) return true;
  }
  for (const char* f : kFalse) {
    if (s == f) return false;
  }
  return std::nullopt;
}

constexpr size_t kMaxNumberLength = 128;

std::string WithoutUnderscores(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c != '_') out += c;
  }
  return out;
}

}  // namespace

void Where::Fail(const YAML::Node& node, const std::string& message) const {
  int line = LineOf(node);
  if (line > 0) throw ConfigError(fmt::format("{}:{}: {}", *source, line, message));
  throw ConfigError(fmt::format("{}: {}", *source, message));
}

int LineOf(const YAML::Node& node) {
  if (!node.IsDefined()) return 0;
  const YAML::Mark mark = node.Mark();
  return mark.line >= 0 ? mark.line + 1 : 0;
}

bool IsAbsent(const YAML::Node& node) { return !node.IsDefined() || node.IsNull(); }

int64_t ToInt(const YAML::Node& node, const Where& where, const std::string& key) {
  if (!node.IsScalar() || !IsPlain(node)) WrongType(node, where, key, "an integer");
  // Decimal integers, with YAML 1.1's digit separators ("1_000").
  static const std::regex kInt(R"([-+]?[0-9][0-9_]*)");
  const std::string& s = node.Scalar();
  // The length bound keeps std::regex (recursive) away from absurd inputs.
  if (s.size() > kMaxNumberLength || !std::regex_match(s, kInt))
    WrongType(node, where, key, "an integer");
  std::string digits = WithoutUnderscores(s[0] == '+' ? s.substr(1) : s);
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) {
    where.Fail(node, fmt::format("{}: integer {} is out of range", where.Child(key), s));
  }
  return value;
}

double ToFloat(const YAML::Node& node, const Where& where, const std::string& key) {
  if (!node.IsScalar() || !IsPlain(node)) WrongType(node, where, key, "a number");
  const std::string& s = node.Scalar();
  static const std::regex kNumber(
      R"([-+]?([0-9][0-9_]*(\.[0-9_]*)?|\.[0-9][0-9_]*)([eE][-+]?[0-9]+)?)");
  static const std::regex kInf(R"([-+]?\.(inf|Inf|INF))");
  static const std::regex kNan(R"(\.(nan|NaN|NAN))");
  if (s.size() > kMaxNumberLength) WrongType(node, where, key, "a number");
  if (std::regex_match(s, kInf)) {
    return s[0] == '-' ? -std::numeric_limits<double>::infinity()
                       : std::numeric_limits<double>::infinity();
  }
  if (std::regex_match(s, kNan)) return std::numeric_limits<double>::quiet_NaN();
  if (!std::regex_match(s, kNumber)) WrongType(node, where, key, "a number");
  std::string digits = WithoutUnderscores(s[0] == '+' ? s.substr(1) : s);
  double value = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) {
    where.Fail(node, fmt::format("{}: number {} is out of range", where.Child(key), s));
  }
  return value;
}

bool ToBool(const YAML::Node& node, const Where& where, const std::string& key) {
  if (!node.IsScalar() || !IsPlain(node)) WrongType(node, where, key, "true or false");
  std::optional<bool> value = ParseBool(node.Scalar());
  if (!value) WrongType(node, where, key, "true or false");
  return *value;
}

std::string ToString(const YAML::Node& node, const Where& where, const std::string& key) {
  if (!node.IsScalar()) WrongType(node, where, key, "a string");
  return node.Scalar();
}

Fields::Fields(const YAML::Node& node, Where where, const std::string& what)
    : node_(node), where_(std::move(where)), what_(what) {
  if (!node.IsMap()) {
    where_.Fail(node,
                fmt::format("{}: expected a mapping ({}), got {}",
                            where_.path.empty() ? "the file" : where_.path, what, Describe(node)));
  }
  // Note: YAML::Node's assignment rewrites the node it refers to, so entries are only ever
  // copy-constructed here, never assigned (no erase, no sort).
  std::vector<Entry> all;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar())
      where_.Fail(kv.first, fmt::format("{}: keys must be names", where_.path));
    all.push_back({kv.first.Scalar(), kv.first, kv.second});
  }
  // A repeated key replaces the earlier one (PyYAML keeps the last value).
  for (size_t i = 0; i < all.size(); ++i) {
    bool repeated_later = std::any_of(all.begin() + static_cast<std::ptrdiff_t>(i) + 1, all.end(),
                                      [&](const Entry& e) { return e.key == all[i].key; });
    if (!repeated_later) entries_.push_back(all[i]);
  }
}

const Fields::Entry* Fields::Find(const std::string& key) const {
  for (const Entry& e : entries_) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

bool Fields::Has(const std::string& key) {
  asked_.insert(key);
  return Find(key) != nullptr;
}

YAML::Node Fields::Get(const std::string& key) {
  asked_.insert(key);
  const Entry* e = Find(key);
  return e ? e->value : YAML::Node(YAML::NodeType::Undefined);
}

bool Fields::HasValue(const std::string& key) { return !IsAbsent(Get(key)); }

void Fields::FailMissing(const std::string& key) const {
  const Entry* e = Find(key);
  if (e) where_.Fail(e->key_node, fmt::format("{} must not be null", where_.Child(key)));
  FailHere(fmt::format("missing required key {}", where_.Child(key)));
}

void Fields::FailValue(const std::string& key, const std::string& message) {
  const Entry* e = Find(key);
  if (!e) FailHere(fmt::format("{}: {}", where_.Child(key), message));
  where_.Fail(e->key_node, fmt::format("{}: {}", where_.Child(key), message));
}

void Fields::FailHere(const std::string& message) const {
  if (where_.line > 0)
    throw ConfigError(fmt::format("{}:{}: {}", *where_.source, where_.line, message));
  where_.Fail(node_, message);
}

Where Fields::ChildWhere(const std::string& key) const {
  const Entry* e = Find(key);
  return Where{where_.source, where_.Child(key), e ? LineOf(e->key_node) : 0};
}

int64_t Fields::RequiredInt(const std::string& key) {
  YAML::Node v = Get(key);
  if (IsAbsent(v)) FailMissing(key);
  return ToInt(v, where_, key);
}

double Fields::RequiredFloat(const std::string& key) {
  YAML::Node v = Get(key);
  if (IsAbsent(v)) FailMissing(key);
  return ToFloat(v, where_, key);
}

bool Fields::RequiredBool(const std::string& key) {
  YAML::Node v = Get(key);
  if (IsAbsent(v)) FailMissing(key);
  return ToBool(v, where_, key);
}

std::string Fields::RequiredString(const std::string& key) {
  YAML::Node v = Get(key);
  if (IsAbsent(v)) FailMissing(key);
  return ToString(v, where_, key);
}

void Fields::Int(const std::string& key, int64_t* out) {
  YAML::Node v = Get(key);
  if (!IsAbsent(v)) *out = ToInt(v, where_, key);
}

void Fields::Float(const std::string& key, double* out) {
  YAML::Node v = Get(key);
  if (!IsAbsent(v)) *out = ToFloat(v, where_, key);
}

void Fields::Bool(const std::string& key, bool* out) {
  YAML::Node v = Get(key);
  if (!IsAbsent(v)) *out = ToBool(v, where_, key);
}

void Fields::String(const std::string& key, std::string* out) {
  YAML::Node v = Get(key);
  if (!IsAbsent(v)) *out = ToString(v, where_, key);
}

void Fields::OptInt(const std::string& key, std::optional<int64_t>* out) {
  YAML::Node v = Get(key);
  *out = IsAbsent(v) ? std::nullopt : std::optional<int64_t>(ToInt(v, where_, key));
}

void Fields::OptFloat(const std::string& key, std::optional<double>* out) {
  YAML::Node v = Get(key);
  *out = IsAbsent(v) ? std::nullopt : std::optional<double>(ToFloat(v, where_, key));
}

void Fields::OptBool(const std::string& key, std::optional<bool>* out) {
  YAML::Node v = Get(key);
  *out = IsAbsent(v) ? std::nullopt : std::optional<bool>(ToBool(v, where_, key));
}

void Fields::OptString(const std::string& key, std::optional<std::string>* out) {
  YAML::Node v = Get(key);
  *out = IsAbsent(v) ? std::nullopt : std::optional<std::string>(ToString(v, where_, key));
}

std::vector<std::string> Fields::Keys() const {
  std::vector<std::string> keys;
  for (const Entry& e : entries_) keys.push_back(e.key);
  return keys;
}

void Fields::Expect(std::initializer_list<const char*> keys) {
  for (const char* key : keys) asked_.insert(key);
  Finish();
}

void Fields::Finish() const {
  for (const Entry& e : entries_) {
    if (asked_.count(e.key)) continue;
    std::vector<std::string> known(asked_.begin(), asked_.end());
    std::string hint = Suggest(e.key, known);
    std::string message = fmt::format("unknown key {}", where_.Child(e.key));
    if (!hint.empty()) {
      message += fmt::format("; did you mean {}?", hint);
    } else {
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      message += fmt::format(" ({} accepts: {})", what_, list);
    }
    where_.Fail(e.key_node, message);
  }
}

std::string Suggest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const std::string& c : candidates) {
    // Levenshtein distance, one row at a time.
    std::vector<size_t> row(c.size() + 1);
    for (size_t j = 0; j <= c.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= word.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= c.size(); ++j) {
        size_t above = row[j];
        row[j] =
            std::min({row[j] + 1, row[j - 1] + 1, diagonal + (word[i - 1] == c[j - 1] ? 0 : 1)});
        diagonal = above;
      }
    }
    if (row[c.size()] < best_distance) {
      best_distance = row[c.size()];
      best = c;
    }
  }
  // Close enough to be a typo: at most a third of the word's letters differ.
  return best_distance <= std::max<size_t>(2, word.size() / 3) ? best : "";
}

}  // namespace strun::train::yaml_fields
