// Host lists with the semantics of Slurm 22.05's src/common/hostlist.c as used by
// `scontrol show hostnames` (hostlist_create + hostlist_shift) and `scontrol show hostlist`
// (hostlist_create + hostlist_ranged_string). The behaviour, including its odd corners, was
// established by reading that file and checked against the real scontrol
// (tests/slurm/hostlist_scontrol_test.cc); the code here is an independent implementation.
//
// Model: a host list is a sequence of ranges. A range is a prefix plus numbers lo..hi printed
// zero-padded to a width, or a "single host" whose whole name is the prefix. Pushing a range
// that continues the last one (same prefix, next number, compatible width) extends it.
#include "strun/slurm/hostlist.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

namespace strun::slurm {
namespace {

using ulong = unsigned long;
constexpr ulong kULongMax = std::numeric_limits<ulong>::max();

constexpr ulong kMaxRange = 64 * 1024;        // hosts in one a-b range (Slurm's MAX_RANGE)
constexpr ulong kMaxPrefixCount = 64 * 1024;  // names from one prefix bracket (MAX_PREFIX_CNT)
constexpr size_t kMaxRanges = 256 * 1024;     // ranges inside one bracket (MAX_RANGES)
// Not in Slurm: bounds on what one list may expand to, so that a hostile list gives an error
// within a second instead of exhausting memory ("a[1-6000]a[1-6000]b[1]" multiplies bracket
// groups; a long prefix multiplies the bytes). Far above any real allocation.
constexpr size_t kMaxHosts = size_t{1} << 20;
constexpr size_t kMaxNameBytes = size_t{64} << 20;  // prefixes kept for the ranges, in total

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
bool IsSeparator(char c) { return c == '\t' || c == ',' || c == ' '; }

// strtoul(s, &end, 10) from the C library: leading white space, an optional sign (a minus
// negates modulo 2^64), digits, saturation at ULONG_MAX. `consumed` is 0 when nothing converted.
ulong StrToUL(std::string_view s, size_t* consumed) {
  size_t i = 0;
  while (i < s.size() && IsSpace(s[i])) ++i;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    negative = s[i] == '-';
    ++i;
  }
  size_t digits_start = i;
  ulong value = 0;
  bool overflow = false;
  for (; i < s.size() && IsDigit(s[i]); ++i) {
    ulong d = static_cast<ulong>(s[i] - '0');
    if (value > (kULongMax - d) / 10) overflow = true;
    value = value * 10 + d;
  }
  if (i == digits_start) {
    *consumed = 0;
    return 0;
  }
  *consumed = i;
  if (overflow) return kULongMax;
  return negative ? ulong{0} - value : value;
}

// Slurm prints numbers with "%0*lu": at least `width` digits.
std::string Padded(ulong n, int width) {
  std::string digits = std::to_string(n);
  if (width > static_cast<int>(digits.size())) {
    digits.insert(0, static_cast<size_t>(width) - digits.size(), '0');
  }
  return digits;
}

int DigitCount(ulong n) {
  int count = 1;
  while (n /= 10) ++count;
  return count;
}

int ZerosNeeded(ulong n, int width) {
  int digits = DigitCount(n);
  return width > digits ? width - digits : 0;
}

// Whether numbers n (width wn) and m (width wm) can share one width without changing the zero
// padding of either; adjusts one of the widths when they can.
bool WidthsEquivalent(ulong n, int* wn, ulong m, int* wm) {
  if (*wn == *wm) return true;
  int npad = ZerosNeeded(n, *wn);
  int nmpad = ZerosNeeded(n, *wm);
  int mpad = ZerosNeeded(m, *wm);
  int mnpad = ZerosNeeded(m, *wn);
  if (npad != nmpad && mpad != mnpad) return false;
  if (npad != nmpad) {
    *wm = *wn;
  } else {
    *wn = *wm;
  }
  return true;
}

// Natural-order string comparison (Martin Pool's strnatcmp, which Slurm uses for prefixes):
// white space is skipped and runs of digits compare by value.
int CompareDigitsRight(std::string_view a, std::string_view b) {
  int bias = 0;
  for (size_t i = 0;; ++i) {
    char ca = i < a.size() ? a[i] : '\0';
    char cb = i < b.size() ? b[i] : '\0';
    bool da = IsDigit(ca), db = IsDigit(cb);
    if (!da && !db) return bias;
    if (!da) return -1;
    if (!db) return 1;
    if (ca < cb) {
      if (bias == 0) bias = -1;
    } else if (ca > cb) {
      if (bias == 0) bias = 1;
    }
  }
}

int CompareDigitsLeft(std::string_view a, std::string_view b) {
  for (size_t i = 0;; ++i) {
    char ca = i < a.size() ? a[i] : '\0';
    char cb = i < b.size() ? b[i] : '\0';
    bool da = IsDigit(ca), db = IsDigit(cb);
    if (!da && !db) return 0;
    if (!da) return -1;
    if (!db) return 1;
    if (ca != cb) return ca < cb ? -1 : 1;
  }
}

int NaturalCompare(std::string_view a, std::string_view b) {
  size_t ai = 0, bi = 0;
  auto at = [](std::string_view s, size_t i) { return i < s.size() ? s[i] : '\0'; };
  while (true) {
    while (IsSpace(at(a, ai))) ++ai;
    while (IsSpace(at(b, bi))) ++bi;
    char ca = at(a, ai), cb = at(b, bi);
    if (IsDigit(ca) && IsDigit(cb)) {
      std::string_view ra = a.substr(ai), rb = b.substr(bi);
      int result =
          (ca == '0' || cb == '0') ? CompareDigitsLeft(ra, rb) : CompareDigitsRight(ra, rb);
      if (result != 0) return result;
    }
    if (ca == '\0' && cb == '\0') return 0;
    // Compare as unsigned char, like the C original on the byte values.
    auto ua = static_cast<unsigned char>(ca), ub = static_cast<unsigned char>(cb);
    if (ua != ub) return ua < ub ? -1 : 1;
    ++ai;
    ++bi;
  }
}

struct Range {
  std::string prefix;
  ulong lo = 0;
  ulong hi = 0;
  int width = 0;
  bool single = false;  // the whole name is `prefix`, there is no number

  ulong Count() const { return single ? 1 : hi - lo + 1; }
};

int ComparePrefixes(const Range& a, const Range& b) {
  int c = NaturalCompare(a.prefix, b.prefix);
  return c == 0 ? static_cast<int>(b.single) - static_cast<int>(a.single) : c;
}

// Whether two neighbouring ranges print inside one pair of brackets.
bool SameBracket(const Range& a, const Range& b) {
  return ComparePrefixes(a, b) == 0 && !a.single && !b.single;
}

class RangeList {
 public:
  // Appends a range, extending the last one when `r` continues it.
  Status Push(Range r) {
    if (!ranges_.empty()) {
      Range& tail = ranges_.back();
      if (tail.hi == r.lo - 1 && ComparePrefixes(tail, r) == 0 &&
          WidthsEquivalent(tail.lo, &tail.width, r.lo, &r.width)) {
        tail.hi = r.hi;
        host_count_ += r.Count();
        return Status();
      }
    }
    if (ranges_.size() >= kMaxHosts || name_bytes_ + r.prefix.size() > kMaxNameBytes)
      return TooLarge();
    name_bytes_ += r.prefix.size();
    host_count_ += r.Count();
    ranges_.push_back(std::move(r));
    return Status();
  }

  // Appends one literal host name: trailing digits are its number, the rest its prefix.
  Status PushHost(std::string_view name) {
    size_t digits = 0;
    while (digits < name.size() && IsDigit(name[name.size() - 1 - digits])) ++digits;
    Range r;
    if (digits == 0) {
      r.prefix = std::string(name);
      r.single = true;
      return Push(std::move(r));
    }
    std::string_view suffix = name.substr(name.size() - digits);
    size_t consumed = 0;
    r.prefix = std::string(name.substr(0, name.size() - digits));
    r.lo = r.hi = StrToUL(suffix, &consumed);
    r.width = static_cast<int>(suffix.size());
    return Push(std::move(r));
  }

  const std::vector<Range>& ranges() const { return ranges_; }
  ulong host_count() const { return host_count_; }

  static Error TooLarge() {
    return MakeError("expands to more than " + std::to_string(kMaxHosts) + " hosts or " +
                     std::to_string(kMaxNameBytes >> 20) + " MiB of names");
  }

 private:
  std::vector<Range> ranges_;
  size_t name_bytes_ = 0;
  ulong host_count_ = 0;  // like Slurm's nhosts: wraps the same way for absurd ranges
};

struct NumberRange {
  ulong lo = 0;
  ulong hi = 0;
  int width = 0;
};

// One element between brackets: "7", "01-12". Slurm quirks kept: the low bound's width is the
// length of its text, text after the low number is ignored when a high bound follows ("1a-3"),
// and "5-" means "5".
Result<NumberRange> ParseSingleRange(std::string_view text) {
  auto invalid = [&](std::string_view why) {
    return MakeError("invalid range '" + std::string(text) + "' (" + std::string(why) + ")");
  };
  if (text.find('x') != std::string_view::npos) return invalid("'x' is not allowed");
  std::string_view low = text;
  std::optional<std::string_view> high;
  if (size_t dash = text.find('-'); dash != std::string_view::npos) {
    low = text.substr(0, dash);
    high = text.substr(dash + 1);
    if (!high->empty() && high->front() == '-') return invalid("negative numbers are not allowed");
  }
  NumberRange r;
  r.width = static_cast<int>(low.size());
  size_t low_used = 0;
  r.lo = StrToUL(low, &low_used);
  if (low_used == 0) return invalid("expected a number");
  if (high && !high->empty()) {
    size_t high_used = 0;
    r.hi = StrToUL(*high, &high_used);
    if (high_used == 0 || high_used != high->size()) return invalid("expected a number after '-'");
  } else {
    r.hi = r.lo;
    if (low_used != low.size()) return invalid("expected only digits");
  }
  if (r.lo > r.hi) return invalid("the low bound is above the high bound");
  if (r.hi - r.lo + 1 > kMaxRange) {
    return invalid("more than " + std::to_string(kMaxRange) + " hosts in one range");
  }
  return r;
}

// The comma-separated elements between one pair of brackets.
Result<std::vector<NumberRange>> ParseRangeList(std::string_view text) {
  std::vector<NumberRange> out;
  while (true) {
    if (out.size() >= kMaxRanges) {
      return MakeError("more than " + std::to_string(kMaxRanges) + " ranges in one bracket");
    }
    size_t comma = text.find(',');
    auto range = ParseSingleRange(text.substr(0, comma));
    if (!range.ok()) return range.error();
    out.push_back(*range);
    if (comma == std::string_view::npos) return out;
    text.remove_prefix(comma + 1);
  }
}

// Pushes prefix+number for every number of `ranges`. A prefix that itself holds a bracket group
// ("a[1-2]b") is expanded first, recursively for further groups to its left. As in Slurm, an
// error in a group two or more levels to the left is ignored and only drops those names.
Status PushRanges(RangeList& list, const std::string& prefix,
                  const std::vector<NumberRange>& ranges) {
  size_t open = prefix.rfind('[');
  size_t close = prefix.rfind(']');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    for (const NumberRange& r : ranges) {
      Range range{prefix, r.lo, r.hi, r.width, false};
      if (Status s = list.Push(std::move(range)); !s.ok()) return s;
    }
    return Status();
  }
  std::string head = prefix.substr(0, open);
  std::string_view inner = std::string_view(prefix).substr(open + 1, close - open - 1);
  std::string tail = prefix.substr(close + 1);
  bool nested = head.find('[') != std::string::npos;
  auto groups = ParseRangeList(inner);
  if (!groups.ok()) return groups.error();
  ulong names = 0;
  for (const NumberRange& g : *groups) {
    // hi - lo + 1 wraps to 0 for the range 0-ULONG_MAX (saturated numbers): compare first.
    const ulong span = g.hi - g.lo;
    names = span >= kMaxPrefixCount ? kMaxPrefixCount + 1 : names + span + 1;
    if (names > kMaxPrefixCount) {
      return MakeError("a bracket group left of the last one expands to more than " +
                       std::to_string(kMaxPrefixCount) + " names");
    }
    for (ulong j = g.lo;; ++j) {
      std::string expanded = head + Padded(j, g.width) + tail;
      if (nested) {
        Status s = PushRanges(list, expanded, ranges);
        // Slurm folds nested failures into its result with MAX(0, -1): it ignores them. The only
        // failure we must not ignore is our own size guard.
        if (!s.ok() && s.error().message == RangeList::TooLarge().message) return s;
      } else {
        for (const NumberRange& r : ranges) {
          if (Status s = list.Push(Range{expanded, r.lo, r.hi, r.width, false}); !s.ok()) return s;
        }
      }
      if (j == g.hi) break;
    }
  }
  return Status();
}

// Splits off the next token at tab, comma or space, keeping bracket pairs whole
// ("a[1,2],b" gives "a[1,2]" then "b"). Returns nullopt at the end.
std::optional<std::string_view> NextToken(std::string_view s, size_t& pos) {
  while (pos < s.size() && IsSeparator(s[pos])) ++pos;
  if (pos >= s.size()) return std::nullopt;
  size_t start = pos, parse = pos, end = pos;
  while (true) {
    while (end < s.size() && !IsSeparator(s[end])) ++end;
    bool finished = false;
    while (true) {
      size_t open = s.find('[', parse);
      if (open == std::string_view::npos || open > end) {
        finished = true;
        break;
      }
      size_t close = s.find(']', parse);
      if (close == std::string_view::npos || close < open) {
        finished = true;
        break;
      }
      if (close < end) {
        parse = close + 1;
        continue;
      }
      end = close;
      break;
    }
    if (finished) break;
  }
  pos = end;
  while (pos < s.size() && IsSeparator(s[pos])) ++pos;
  return s.substr(start, end - start);
}

Result<RangeList> Parse(std::string_view list) {
  RangeList out;
  size_t pos = 0;
  while (auto token = NextToken(list, pos)) {
    std::string_view tok = *token;
    size_t open = tok.rfind('[');
    if (open == std::string_view::npos) {
      if (Status s = out.PushHost(tok); !s.ok()) return s.error();
      continue;
    }
    std::string prefix(tok.substr(0, open));
    std::string_view rest = tok.substr(open + 1);
    size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      // An unclosed '[' is taken as part of a name: Slurm drops what follows the '[' and closes
      // it ("a[1-2" is the host "a]"), or, with nothing before it, keeps what follows ("[x" is
      // "x").
      Status s = prefix.empty() ? out.PushHost(rest) : out.PushHost(prefix + "]");
      if (!s.ok()) return s.error();
      continue;
    }
    if (close + 1 < rest.size() && rest[close + 1] != ',') {
      return MakeError("unexpected text after ']' in '" + std::string(tok) + "'");
    }
    auto ranges = ParseRangeList(rest.substr(0, close));
    if (!ranges.ok()) return ranges.error();
    if (Status s = PushRanges(out, prefix, *ranges); !s.ok()) return s.error();
  }
  return out;
}

Error ListError(std::string_view list, const Error& cause) {
  return MakeError("invalid host list '" + std::string(list) + "': " + cause.message);
}

std::string RangedString(const RangeList& list) {
  const std::vector<Range>& r = list.ranges();
  std::string out;
  for (size_t i = 0; i < r.size();) {
    if (i > 0) out += ',';
    size_t start = i;
    bool brackets = r[i].Count() > 1 || (i + 1 < r.size() && SameBracket(r[i], r[i + 1]));
    out += r[i].prefix;
    if (brackets) out += '[';
    do {
      if (i > start) out += ',';
      if (!r[i].single) {
        out += Padded(r[i].lo, r[i].width);
        if (r[i].lo < r[i].hi) {
          out += '-';
          out += Padded(r[i].hi, r[i].width);
        }
      }
    } while (++i < r.size() && SameBracket(r[i], r[i - 1]));
    if (brackets) out += ']';
  }
  return out;
}

}  // namespace

Result<std::vector<std::string>> ExpandHostlist(std::string_view list) {
  auto parsed = Parse(list);
  if (!parsed.ok()) return ListError(list, parsed.error());
  std::vector<std::string> names;
  ulong remaining = parsed->host_count();
  if (remaining > kMaxHosts) return ListError(list, RangeList::TooLarge());
  names.reserve(remaining);
  for (const Range& r : parsed->ranges()) {
    if (remaining == 0) break;
    if (r.single) {
      names.push_back(r.prefix);
      --remaining;
      continue;
    }
    for (ulong n = r.lo; remaining > 0; ++n) {
      names.push_back(r.prefix + Padded(n, r.width));
      --remaining;
      // Slurm 22.05's scontrol crashes on ranges that end at ULONG_MAX; we list every name.
      if (n == r.hi) break;
    }
  }
  return names;
}

std::string CompressHostlist(const std::vector<std::string>& names) {
  RangeList list;
  for (const std::string& name : names) {
    if (!list.PushHost(name).ok()) break;  // only past kMaxHosts distinct ranges
  }
  return RangedString(list);
}

Result<std::string> NormalizeHostlist(std::string_view list) {
  auto parsed = Parse(list);
  if (!parsed.ok()) return ListError(list, parsed.error());
  return RangedString(*parsed);
}

}  // namespace strun::slurm
