// strun-hostlist: Slurm host lists for scripts and containers without the Slurm client tools.
//
//   strun-hostlist expand 'nid[001-003]'      -> one name per line (scontrol show hostnames)
//   strun-hostlist compress nid001 nid002 ... -> nid[001-002]      (scontrol show hostlist)
//
// Exit codes: 0 success, 1 malformed host list, 2 wrong usage.
#include <cstdio>
#include <string>
#include <string_view>

#include "strun/slurm/hostlist.h"

namespace {

constexpr int kBadList = 1;
constexpr int kUsage = 2;

void PrintUsage(FILE* out) {
  std::fputs(
      "usage: strun-hostlist expand LIST\n"
      "       strun-hostlist compress NAME...\n"
      "\n"
      "expand    prints the host names of a Slurm host list, one per line, in order and\n"
      "          with duplicates, like `scontrol show hostnames LIST`.\n"
      "compress  prints the names (or host lists) as one Slurm host list, without sorting,\n"
      "          like `scontrol show hostlist NAME,NAME,...`.\n"
      "\n"
      "exit codes: 0 success, 1 malformed host list, 2 wrong usage\n",
      out);
}

int Usage(const std::string& problem) {
  std::fprintf(stderr, "strun-hostlist: %s\n\n", problem.c_str());
  PrintUsage(stderr);
  return kUsage;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage("missing command (expand or compress)");
  std::string_view command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") {
    PrintUsage(stdout);
    return 0;
  }
  if (command == "expand") {
    if (argc != 3) return Usage("expand takes exactly one host list (quote it for the shell)");
    auto names = strun::slurm::ExpandHostlist(argv[2]);
    if (!names.ok()) {
      std::fprintf(stderr, "strun-hostlist: %s\n", names.error().message.c_str());
      return kBadList;
    }
    std::string out;
    for (const std::string& name : *names) {
      out += name;
      out += '\n';
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : kBadList;
  }
  if (command == "compress") {
    if (argc < 3) return Usage("compress needs at least one host name");
    std::string joined;
    for (int i = 2; i < argc; ++i) {
      if (i > 2) joined += ',';
      joined += argv[i];
    }
    auto list = strun::slurm::NormalizeHostlist(joined);
    if (!list.ok()) {
      std::fprintf(stderr, "strun-hostlist: %s\n", list.error().message.c_str());
      return kBadList;
    }
    std::printf("%s\n", list->c_str());
    return std::fflush(stdout) == 0 ? 0 : kBadList;
  }
  return Usage("unknown command '" + std::string(command) + "' (expected expand or compress)");
}
