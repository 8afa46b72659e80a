// strun/slurm/hostlist.h: Slurm host lists, exactly as `scontrol show hostnames` and
// `scontrol show hostlist` of Slurm 22.05 treat them.
//
//   ExpandHostlist("nid[001-003,007],login1") -> nid001 nid002 nid003 nid007 login1
//   CompressHostlist({"nid001","nid002","nid007"}) -> "nid[001-002,007]"
//
// Expansion keeps order and duplicates; the zero padding of a range is the width of its low bound;
// several bracket groups in one name expand as a cartesian product, leftmost group outermost.
// Malformed lists (unbalanced brackets, reversed or non-numeric ranges, ...) are errors that quote
// the list.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "strun/result.h"

namespace strun::slurm {

Result<std::vector<std::string>> ExpandHostlist(std::string_view list);

// Compresses names into one host list string, keeping the given order the way scontrol does.
std::string CompressHostlist(const std::vector<std::string>& names);

}  // namespace strun::slurm
