#include "config/yaml_emitter.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <regex>

namespace strun::train::yaml_emitter {
namespace {

// Plain scalars that a YAML 1.1 (PyYAML) or 1.2 (yaml-cpp, strun) reader would not read as a
// string.
bool ResolvesToNonString(const std::string& s) {
  if (s.size() > 128) return false;  // no YAML number or keyword is that long; spares std::regex
  static const std::regex kSpecial(
      R"(~|null|Null|NULL|true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|y|Y|n|N)");
  static const std::regex kNumber(
      R"([-+]?(0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?|\.[0-9_]+([eE][-+]?[0-9]+)?|\.(inf|Inf|INF))|\.(nan|NaN|NAN))");
  return std::regex_match(s, kSpecial) || std::regex_match(s, kNumber);
}

bool NeedsDoubleQuotes(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

bool SafePlain(const std::string& s) {
  if (s.empty() || ResolvesToNonString(s)) return false;
  static const std::string kIndicators = "-?:,[]{}#&*!|>'\"%@` ";
  if (kIndicators.find(s.front()) != std::string::npos) return false;
  if (s.back() == ' ' || s.back() == ':') return false;
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos) return false;
  return true;
}

}  // namespace

std::string QuoteString(const std::string& s) {
  if (NeedsDoubleQuotes(s)) {
    std::string out = "\"";
    for (char c : s) {
      auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\t') {
        out += "\\t";
      } else if (u < 0x20 || u == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\x%02x", u);
        out += buf;
      } else {
        out += c;
      }
    }
    return out + "\"";
  }
  if (SafePlain(s)) return s;
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string FormatFloat(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  // Shortest round-trip digits, then Python's repr layout: fixed for exponents in [-4, 16).
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool negative = sci[0] == '-';
  if (negative) sci.erase(0, 1);
  size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  int exponent = std::atoi(sci.c_str() + e + 1);
  std::string out;
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out = "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    } else if (static_cast<size_t>(exponent) + 1 >= digits.size()) {
      out = digits + std::string(static_cast<size_t>(exponent) + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<size_t>(exponent) + 1) + "." +
            digits.substr(static_cast<size_t>(exponent) + 1);
    }
  } else {
    // PyYAML turns Python's "1e-08" into "1.0e-08" so that YAML 1.1 reads it as a float.
    std::string mantissa =
        digits.size() == 1 ? digits + ".0" : digits.substr(0, 1) + "." + digits.substr(1);
    char exp[16];
    std::snprintf(exp, sizeof(exp), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out = mantissa + exp;
  }
  return negative ? "-" + out : out;
}

Value Value::String(const std::string& s) { return Value(Kind::kScalar, QuoteString(s)); }
Value Value::Int(int64_t v) { return Value(Kind::kScalar, std::to_string(v)); }
Value Value::Float(double v) { return Value(Kind::kScalar, FormatFloat(v)); }

Value& Value::Set(const std::string& key, Value value) {
  items_.emplace_back(key, std::move(value));
  return *this;
}

Value& Value::Append(Value value) {
  items_.emplace_back("", std::move(value));
  return *this;
}

std::string Value::Emit() const {
  std::string out;
  if (kind_ == Kind::kMap && !items_.empty()) {
    EmitMap(0, false, &out);
  } else if (kind_ == Kind::kList && !items_.empty()) {
    EmitList(0, false, &out);
  } else {
    out = (kind_ == Kind::kMap ? "{}" : kind_ == Kind::kList ? "[]" : text_) + "\n";
  }
  return out;
}

void Value::EmitAfterKey(int indent, std::string* out) const {
  if (kind_ == Kind::kScalar) {
    *out += " " + text_ + "\n";
  } else if (items_.empty()) {
    *out += kind_ == Kind::kMap ? " {}\n" : " []\n";
  } else if (kind_ == Kind::kMap) {
    *out += "\n";
    EmitMap(indent + 2, false, out);
  } else {
    *out += "\n";
    EmitList(indent, false, out);  // PyYAML: list items at the key's own indentation
  }
}

void Value::EmitMap(int indent, bool first_inline, std::string* out) const {
  std::vector<const std::pair<std::string, Value>*> order;
  for (const auto& item : items_) order.push_back(&item);
  if (sorted_) {
    std::stable_sort(order.begin(), order.end(),
                     [](const auto* a, const auto* b) { return a->first < b->first; });
  }
  bool first = true;
  for (const auto* item : order) {
    if (!(first && first_inline)) *out += std::string(static_cast<size_t>(indent), ' ');
    first = false;
    *out += QuoteString(item->first) + ":";
    item->second.EmitAfterKey(indent, out);
  }
}

void Value::EmitList(int indent, bool first_inline, std::string* out) const {
  bool first = true;
  for (const auto& item : items_) {
    if (!(first && first_inline)) *out += std::string(static_cast<size_t>(indent), ' ');
    first = false;
    *out += "- ";
    const Value& v = item.second;
    if (v.kind_ == Kind::kScalar) {
      *out += v.text_ + "\n";
    } else if (v.items_.empty()) {
      *out += v.kind_ == Kind::kMap ? "{}\n" : "[]\n";
    } else if (v.kind_ == Kind::kMap) {
      v.EmitMap(indent + 2, true, out);
    } else {
      v.EmitList(indent + 2, true, out);
    }
  }
}

}  // namespace strun::train::yaml_emitter
