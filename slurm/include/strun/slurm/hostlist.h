// strun/slurm/hostlist.h: Slurm host lists, exactly as `scontrol show hostnames` and
// `scontrol show hostlist` of Slurm 22.05 treat them.
//
//   ExpandHostlist("nid[001-003,007],login1") -> nid001 nid002 nid003 nid007 login1
//   CompressHostlist({"nid001","nid002","nid007"}) -> "nid[001-002,007]"
//
// Expansion keeps order and duplicates; the zero padding of a range is the width of its low
// bound's text ("[01-3]" -> 01 02 03, "[8-12]" -> 8 ... 12). Several bracket groups in one name
// expand as a cartesian product; with two groups the leftmost is outermost ("a[1-2]b[1-2]" ->
// a1b1 a1b2 a2b1 a2b2), with more Slurm's own order is kept. Names are separated by commas,
// spaces or tabs. Malformed lists (reversed or non-numeric ranges, empty brackets, text after
// ']', more than 65536 hosts in one range) are errors that quote the list; a '[' that is never
// closed is, as in Slurm, taken as part of a host name.
//
// Compression never sorts: it merges runs of consecutive numbers with the same prefix and puts
// neighbouring ranges of one prefix into one bracket ("a1,a2,a3,b,a4" -> "a[1-3],b,a4").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "strun/result.h"

namespace strun::slurm {

// `scontrol show hostnames LIST`: one name per element.
Result<std::vector<std::string>> ExpandHostlist(std::string_view list);

// `scontrol show hostlist` of the names joined by commas, each name taken literally.
std::string CompressHostlist(const std::vector<std::string>& names);

// `scontrol show hostlist LIST`: parses a host list expression (which may itself hold brackets)
// and writes it in Slurm's compressed form.
Result<std::string> NormalizeHostlist(std::string_view list);

}  // namespace strun::slurm
