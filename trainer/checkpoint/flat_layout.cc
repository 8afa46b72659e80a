#include "checkpoint/flat_layout.h"

#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <utility>

namespace strun::train {
namespace {

std::string ShapeStr(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// The element count of a shape of non-negative dims; nullopt when it overflows int64.
std::optional<int64_t> NumelOf(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(n, d, &n)) return std::nullopt;
  }
  return n;
}

// `v` as a T when it is an integer that T holds. nlohmann's get<T>() converts any number, so a
// file's 1e300 (a float: undefined behaviour), 2.5 or 2^32 + 1 (for an int) became another value.
// Throws like nlohmann does (ParseFlatLayout reports either).
template <typename T>
T Integer(const nlohmann::json& v, const std::string& key) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(u);
  } else if (v.is_number_integer()) {
    const auto i = v.get<int64_t>();
    if (i >= std::numeric_limits<T>::min() && i <= std::numeric_limits<T>::max()) {
      return static_cast<T>(i);
    }
  }
  throw std::out_of_range(key + " is " + (v.is_number() ? v.dump() : std::string(v.type_name())) +
                          ", not an integer in [" + std::to_string(std::numeric_limits<T>::min()) +
                          ", " + std::to_string(std::numeric_limits<T>::max()) + "]");
}

template <typename T>
T IntegerAt(const nlohmann::json& j, const std::string& key) {
  return Integer<T>(j.at(key), key);
}

}  // namespace

std::string FlatLayoutJson(const OptimizerFileLayout& l) {
  nlohmann::json segs = nlohmann::json::array();
  for (const auto& s : l.segments) {
    segs.push_back({{"name", s.name}, {"shape", s.shape}, {"offset", s.offset}});
  }
  nlohmann::json j = {{"version", 1},         {"pp_rank", l.pp_rank}, {"pp", l.pp},
                      {"dp_rank", l.dp_rank}, {"dp", l.dp},           {"tp_rank", l.tp_rank},
                      {"tp", l.tp},           {"zero", l.zero},       {"numel", l.numel},
                      {"begin", l.begin},     {"end", l.end},         {"segments", segs}};
  return j.dump();
}

Result<OptimizerFileLayout> ParseFlatLayout(const std::string& text, const std::string& file) {
  auto bad = [&](const std::string& what) {
    return MakeError(file + ": corrupt optimizer metadata '" + std::string(kFlatLayoutKey) +
                     "': " + what + "; resume from an intact checkpoint");
  };
  OptimizerFileLayout l;
  try {
    const auto j = nlohmann::json::parse(text);
    if (const int version = IntegerAt<int>(j, "version"); version != 1) {
      return bad("version " + std::to_string(version) + " (this strun-train reads version 1)");
    }
    l.pp_rank = IntegerAt<int>(j, "pp_rank");
    l.pp = IntegerAt<int>(j, "pp");
    l.dp_rank = IntegerAt<int>(j, "dp_rank");
    l.dp = IntegerAt<int>(j, "dp");
    l.tp_rank = IntegerAt<int>(j, "tp_rank");
    l.tp = IntegerAt<int>(j, "tp");
    l.zero = j.at("zero").get<bool>();
    l.numel = IntegerAt<int64_t>(j, "numel");
    l.begin = IntegerAt<int64_t>(j, "begin");
    l.end = IntegerAt<int64_t>(j, "end");
    const auto& segments = j.at("segments");
    if (!segments.is_array()) throw std::out_of_range("segments is not an array");
    for (const auto& s : segments) {
      OptimizerFileLayout::Segment seg;
      seg.name = s.at("name").get<std::string>();
      const auto& shape = s.at("shape");
      if (!shape.is_array()) throw std::out_of_range("shape of " + seg.name + " is not an array");
      for (const auto& d : shape) seg.shape.push_back(Integer<int64_t>(d, "shape of " + seg.name));
      seg.offset = IntegerAt<int64_t>(s, "offset");
      l.segments.push_back(std::move(seg));
    }
  } catch (const std::exception& e) {
    return bad(e.what());
  }
  if (l.pp < 1 || l.dp < 1 || l.tp < 1 || l.pp_rank < 0 || l.pp_rank >= l.pp || l.dp_rank < 0 ||
      l.dp_rank >= l.dp || l.tp_rank < 0 || l.tp_rank >= l.tp) {
    return bad("ranks out of range (pp " + std::to_string(l.pp_rank) + " of " +
               std::to_string(l.pp) + ", dp " + std::to_string(l.dp_rank) + " of " +
               std::to_string(l.dp) + ", tp " + std::to_string(l.tp_rank) + " of " +
               std::to_string(l.tp) + ")");
  }
  if (l.numel < 0 || l.begin < 0 || l.begin > l.end || l.end > l.numel) {
    return bad("range [" + std::to_string(l.begin) + ", " + std::to_string(l.end) +
               ") is not inside the buffer of " + std::to_string(l.numel) + " elements");
  }
  int64_t next = 0;
  std::set<std::string> names;
  for (const auto& s : l.segments) {
    for (int64_t d : s.shape) {
      if (d < 0) return bad("parameter " + s.name + " has shape " + ShapeStr(s.shape));
    }
    const auto n = NumelOf(s.shape);
    if (!n) return bad("parameter " + s.name + " has shape " + ShapeStr(s.shape) + " (too large)");
    // offset <= numel first, so that numel - offset cannot overflow.
    if (s.offset < next || s.offset > l.numel || *n > l.numel - s.offset) {
      return bad("parameter " + s.name + " at offset " + std::to_string(s.offset) + " with " +
                 std::to_string(*n) + " elements overlaps another or leaves the buffer of " +
                 std::to_string(l.numel));
    }
    if (!names.insert(s.name).second) return bad("parameter " + s.name + " is listed twice");
    next = s.offset + *n;
  }
  return l;
}

}  // namespace strun::train
