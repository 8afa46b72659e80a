// Fuzzes the host list parser (slurm/hostlist.h): any text either expands or is an error, and
// expansion, normalisation and compression agree with each other.
#include <cstdint>

#include "fuzz_util.h"
#include "strun/slurm/hostlist.h"

using strun::slurm::CompressHostlist;
using strun::slurm::ExpandHostlist;
using strun::slurm::NormalizeHostlist;

namespace {

// Numbers past unsigned long (20 digits and more, zero padding included) saturate as in Slurm's
// strtoul, whose scontrol prints the same names: no round trip is defined for them.
bool LongNumber(std::string_view name) {
  size_t digits = 0;
  for (char c : name) {
    digits = c >= '0' && c <= '9' ? digits + 1 : 0;
    if (digits > 19) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Lists come from argv and the environment: C strings, so they end at the first NUL.
  std::string_view list = strun::fuzz::AsText(data, size);
  list = list.substr(0, list.find('\0'));
  // Bracket groups left of the last one multiply ("a[1-6000]a[1-6000]b[1]"); slurm/ bounds such
  // lists at 1Mi names or 64 MiB of names (about 0.5 s natively, seconds under the sanitizers).
  // Lists with more groups than that per name, or many such names, would only repeat the same
  // slow path and make the 30 s runs flaky on a loaded machine: at most three '[' in a name and
  // eight in the list.
  size_t brackets = 0, in_name = 0;
  for (char c : list) {
    if (c == ',' || c == ' ' || c == '\t') in_name = 0;
    if (c == '[' && (++brackets > 8 || ++in_name > 3)) return 0;
  }
  auto names = ExpandHostlist(list);
  auto normal = NormalizeHostlist(list);
  // Normalising does not expand, so it also takes lists too large to expand; nothing else.
  FUZZ_CHECK(normal.ok() || !names.ok(), "a list that expands does not normalise");
  // Lists of up to 1Mi names are valid; checking them costs seconds each under the
  // sanitizers, so the properties below are checked on lists of at most 64Ki names.
  if (!names.ok() || names->size() > (size_t{1} << 16)) return 0;
  // As in Slurm, a '[' without its ']' stays part of a name, separators inside it included
  // ("a[1,b[2]" -> "a[1,b2", "[" -> ""); such names are not re-read the same way. Nor are names
  // with other white space than ' ' and '\t' (scontrol merges their prefixes:
  // "\v\v3,\v3" -> "\v\v[3,3]"). The properties below hold for the other names.
  bool plain = true;
  for (const auto& name : *names) {
    if (name.empty() || name.find_first_of("[]\n\v\f\r") != std::string::npos || LongNumber(name)) {
      plain = false;
      continue;
    }
    FUZZ_CHECK(name.find_first_of(", \t") == std::string::npos, "a host name holds a separator");
  }
  if (!plain) return 0;
  auto from_normal = ExpandHostlist(*normal);
  FUZZ_CHECK(from_normal.ok() && *from_normal == *names,
             "the normalized list expands to other names");
  auto from_compressed = ExpandHostlist(CompressHostlist(*names));
  FUZZ_CHECK(from_compressed.ok() && *from_compressed == *names,
             "the compressed names expand to other names");
  return 0;
}
