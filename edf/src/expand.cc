#include "strun/edf/expand.h"

#include <fmt/format.h>

namespace strun::edf {
namespace {

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

}  // namespace

Result<std::string> ExpandVariables(std::string_view value, const EnvMap& vars,
                                    std::string_view where) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c != '$' || i + 1 == value.size()) {
      out += c;
      continue;
    }
    char next = value[i + 1];
    if (next == '$') {  // $$ -> $
      out += '$';
      ++i;
      continue;
    }
    if (next != '{') {  // bare $NAME is not expanded: braces are required
      out += c;
      continue;
    }
    size_t close = value.find('}', i + 2);
    if (close == std::string_view::npos) {
      return MakeError(
          fmt::format("{}: unterminated '${{' in \"{}\": write ${{NAME}}, or $$ for a literal '$'",
                      where, value));
    }
    std::string_view body = value.substr(i + 2, close - i - 2);
    std::string_view name = body;
    std::optional<std::string_view> fallback;
    if (size_t dash = body.find(":-"); dash != std::string_view::npos) {
      name = body.substr(0, dash);
      fallback = body.substr(dash + 2);
    }
    bool valid = !name.empty() && !(name[0] >= '0' && name[0] <= '9');
    for (char n : name) valid = valid && IsNameChar(n);
    if (!valid) {
      return MakeError(fmt::format(
          "{}: invalid variable reference '${{{}}}' in \"{}\": names are letters, digits "
          "and '_'; write $$ for a literal '$'",
          where, body, value));
    }
    auto it = vars.find(std::string(name));
    if (fallback) {
      out += (it != vars.end() && !it->second.empty()) ? it->second : std::string(*fallback);
    } else if (it != vars.end()) {
      out += it->second;
    } else {
      return MakeError(
          fmt::format("{}: variable '{}' is not defined in the environment; set it before "
                      "submitting, or write ${{{}:-}} to use an empty value",
                      where, name, name));
    }
    i = close;
  }
  return out;
}

}  // namespace strun::edf
