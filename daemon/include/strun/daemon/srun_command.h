// strun/daemon/srun_command.h: the srun command strund launches, and how each launch changes it.
//
// The command is `srun [srun options] strun [strun options] ...`. The srun options are the
// arguments before the first one whose basename is `strun` (and that is not the value of -N, -n,
// -w, -x or their long forms). Among them strund reads, in the forms `-N 2`, `-N2`, `--nodes=2`
// and `--nodes 2` (likewise for the others):
//   -N/--nodes          the node count (a range MIN-MAX must have MIN == MAX: strund's own
//                       --nodes MIN:MAX lets a job continue on fewer nodes)
//   -w/--nodelist       nodes to prefer for the first launch (a host list)
//   -x/--exclude        nodes never to use (a host list)
//   -n/--ntasks, --ntasks-per-node   how many strun agents a launch has
// Abbreviated long options (`--node=2`), -F/--nodefile and host files are not recognised.
//
// For each launch RewriteSrunCommand drops -N, -w and -x with their values and puts
// `--nodes=<k> --nodelist=<a,b,...> --overlap` right after srun (--overlap: a step that lost a
// node holds its CPUs until Slurm declares the node DOWN); every other argument stays as it was.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::daemon {

struct SrunCommand {
  std::vector<std::string> argv;       // as given, argv[0] is srun
  size_t strun_index = 0;              // index of the strun program in argv
  std::optional<int> nodes;            // -N/--nodes
  std::vector<std::string> nodelist;   // -w/--nodelist, expanded
  std::vector<std::string> exclude;    // -x/--exclude, expanded
  std::optional<int> ntasks;           // -n/--ntasks
  std::optional<int> ntasks_per_node;  // --ntasks-per-node
};

// Checks and analyses the command. Errors quote the argument ("the command must start with srun,
// not 'strun'", "srun option '--nodes=two': expected a node count").
Result<SrunCommand> ParseSrunCommand(const std::vector<std::string>& argv);

// The command for a launch on `nodes` (see above).
std::vector<std::string> RewriteSrunCommand(const SrunCommand& command,
                                            const std::vector<std::string>& nodes);

// How many strun agents (srun tasks) a launch on `num_nodes` nodes has: -n when given, else
// num_nodes x (--ntasks-per-node, else `env_ntasks_per_node` (SLURM_NTASKS_PER_NODE, which srun
// reads too), else 1).
int NumAgents(const SrunCommand& command, int num_nodes, std::optional<int> env_ntasks_per_node);

}  // namespace strun::daemon
