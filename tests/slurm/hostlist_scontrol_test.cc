// Differential test: our host list code against the installed Slurm's scontrol on thousands of
// random lists, well-formed and malformed. All lists go to one interactive scontrol through its
// standard input; a marker command after each list splits the output.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "strun/slurm/hostlist.h"

namespace strun::slurm {
namespace {

namespace fs = std::filesystem;

std::string FindInPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    fs::path candidate = fs::path(dir) / program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

class Random {
 public:
  explicit Random(uint32_t seed) : gen_(seed) {}
  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen_); }
  bool Chance(int percent) { return Int(1, 100) <= percent; }
  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[static_cast<size_t>(Int(0, static_cast<int>(items.size()) - 1))];
  }

  std::string Number(int value) {
    std::string s = std::to_string(value);
    if (Chance(30)) s.insert(0, static_cast<size_t>(Int(1, 3)), '0');
    return s;
  }

  // One element between brackets, sometimes malformed.
  std::string Element() {
    if (Chance(12)) {
      static const std::vector<std::string> odd = {
          "", "-", "3-", "-3", "1--2", "2a", "+2", "1-+3", "1x2", "1a-3", "a", "5-2", "0-70000",
          "07-3", "1-3a", "+0-2", "x", "9-10", "98-101", "00", "1-1",
          // Past 32 bits. (Not ULONG_MAX: scontrol crashes or loops forever on some such lists.)
          "4294967295-4294967297"};
      return Pick(odd);
    }
    int lo = Int(0, 120);
    if (Chance(60)) return Number(lo);
    int hi = lo + Int(0, 3);
    return Number(lo) + "-" + Number(hi);
  }

  std::string Group(int max_elements) {
    std::string g = "[";
    int n = Int(1, max_elements);
    for (int i = 0; i < n; ++i) {
      if (i) g += ',';
      g += Element();
    }
    return g + "]";
  }

  std::string Word() {
    static const std::vector<std::string> words = {"nid",  "n",   "a", "b", "x",   "X", "node-",
                                                   "gpu.", "r1n", "c", "_", "a1b", "A", ""};
    return Pick(words);
  }

  std::string Token() {
    std::string t = Word();
    int groups = Chance(55) ? 1 : Int(0, 3);
    for (int g = 0; g < groups; ++g) {
      t += Group(groups > 1 ? 2 : 4);
      if (g + 1 < groups || Chance(15)) t += Word() + (Chance(30) ? std::to_string(Int(0, 9)) : "");
    }
    if (groups == 0 && Chance(70)) t += Number(Int(0, 200));
    if (t.empty()) t = "h";  // scontrol reads a missing argument as a different command
    if (Chance(8)) {         // damage: drop, add or move a bracket, or add text after one
      switch (Int(0, 4)) {
        case 0:
          if (auto p = t.rfind(']'); p != std::string::npos) t.erase(p, 1);
          break;
        case 1:
          if (auto p = t.find('['); p != std::string::npos) t.erase(p, 1);
          break;
        case 2:
          t.insert(static_cast<size_t>(Int(0, static_cast<int>(t.size()))), "[");
          break;
        case 3:
          t.insert(static_cast<size_t>(Int(0, static_cast<int>(t.size()))), "]");
          break;
        case 4:
          t += "]x";
          break;
      }
    }
    return t;
  }

  std::string List() {
    std::string list;
    int tokens = Int(1, 4);
    for (int i = 0; i < tokens; ++i) {
      if (i) list += Chance(90) ? "," : ",,";
      list += Token();
    }
    if (Chance(3)) list = "," + list;
    if (Chance(3)) list += ",";
    return list;
  }

  std::vector<std::string> Names() {
    static const std::vector<std::string> prefixes = {"nid", "n", "a", "node-", "r1n", "", "x"};
    std::vector<std::string> names;
    int n = Int(1, 12);
    std::string prefix = Pick(prefixes);
    int next = Int(0, 110);
    for (int i = 0; i < n; ++i) {
      if (Chance(20)) prefix = Pick(prefixes);
      if (Chance(8)) {
        names.push_back(prefix.empty() ? "login" : prefix);  // a name without a number
        continue;
      }
      int value = Chance(70) ? next : Int(0, 120);
      if (Chance(10) && !names.empty()) {
        names.push_back(names.back());  // duplicate
        continue;
      }
      names.push_back(prefix + Number(value));
      next = value + 1;
    }
    return names;
  }

 private:
  std::mt19937 gen_;
};

std::string Join(const std::vector<std::string>& names, const char* sep) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += sep;
    out += names[i];
  }
  return out;
}

class ScontrolDiff : public ::testing::Test {
 protected:
  void SetUp() override {
    scontrol_ = FindInPath("scontrol");
    if (scontrol_.empty()) GTEST_SKIP() << "scontrol is not installed: cannot compare with Slurm";
    char dir_template[] = "/tmp/strun-hostlist-diff-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    // `show hostnames` needs no controller, but scontrol refuses to start without a config.
    std::ofstream(dir_ / "slurm.conf") << "ClusterName=hostlistdiff\nSlurmctldHost=localhost\n";
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Runs the commands through one scontrol and returns, for each, the stdout lines it produced.
  std::vector<std::vector<std::string>> Run(const std::vector<std::string>& commands) {
    {
      std::ofstream in(dir_ / "commands");
      for (size_t i = 0; i < commands.size(); ++i) {
        in << commands[i] << "\nshow hostnames @@" << i << "\n";
      }
      in << "quit\n";
    }
    // `timeout`: a Slurm bug on some input must fail the test, not hang it.
    std::string cmd = "SLURM_CONF='" + (dir_ / "slurm.conf").string() + "' timeout 120 '" +
                      scontrol_ + "' < '" + (dir_ / "commands").string() + "' > '" +
                      (dir_ / "out").string() + "' 2> '" + (dir_ / "err").string() + "'";
    int rc = std::system(cmd.c_str());
    EXPECT_NE(rc, -1);
    std::ifstream out(dir_ / "out");
    std::vector<std::vector<std::string>> blocks(commands.size());
    std::vector<std::string> current;
    std::string line;
    size_t next = 0;
    while (std::getline(out, line)) {
      if (line.rfind("scontrol:", 0) == 0) continue;  // the prompt echoed with each command
      if (line == "@@" + std::to_string(next)) {
        blocks[next++] = std::move(current);
        current.clear();
        continue;
      }
      current.push_back(line);
    }
    std::ifstream err(dir_ / "err");
    std::stringstream err_text;
    err_text << err.rdbuf();
    EXPECT_EQ(next, commands.size()) << "scontrol output ended early; stderr:\n"
                                     << err_text.str().substr(0, 2000);
    return blocks;
  }

  std::string scontrol_;
  fs::path dir_;
};

TEST_F(ScontrolDiff, RandomListsExpandAndCompressLikeScontrol) {
  Random rng(20240601);
  std::vector<std::string> lists;
  std::vector<std::string> commands;
  for (int i = 0; i < 4000; ++i) {
    std::string list = rng.List();
    lists.push_back(list);
    // Both commands parse the list the same way, so `show hostlist` printing nothing tells a
    // rejected list from an empty one.
    commands.push_back("show hostnames " + list + "\nshow hostlist " + list);
  }
  auto blocks = Run(commands);
  ASSERT_EQ(blocks.size(), lists.size());
  int failures = 0, rejected = 0;
  for (size_t i = 0; i < lists.size() && failures < 20; ++i) {
    const auto& block = blocks[i];
    auto expanded = ExpandHostlist(lists[i]);
    auto normalized = NormalizeHostlist(lists[i]);
    if (block.empty()) {
      ++rejected;
      if (expanded.ok() || normalized.ok()) {
        ++failures;
        ADD_FAILURE() << "scontrol rejects '" << lists[i] << "' but we accept it";
      }
      continue;
    }
    std::vector<std::string> names(block.begin(), block.end() - 1);
    if (!expanded.ok()) {
      ++failures;
      ADD_FAILURE() << "scontrol accepts '" << lists[i]
                    << "' but we say: " << expanded.error().message;
      continue;
    }
    if (*expanded != names) {
      ++failures;
      ADD_FAILURE() << "expand '" << lists[i] << "': scontrol " << Join(names, " ") << " | ours "
                    << Join(*expanded, " ");
    }
    ASSERT_TRUE(normalized.ok()) << lists[i];
    if (*normalized != block.back()) {
      ++failures;
      ADD_FAILURE() << "compress '" << lists[i] << "': scontrol " << block.back() << " | ours "
                    << *normalized;
    }
  }
  // The generator must exercise both outcomes, or the comparison proves little.
  EXPECT_GT(rejected, 200);
  EXPECT_LT(rejected, 3000);
}

TEST_F(ScontrolDiff, RandomNameSequencesCompressLikeScontrol) {
  Random rng(7);
  std::vector<std::vector<std::string>> sequences;
  std::vector<std::string> commands;
  for (int i = 0; i < 3000; ++i) {
    sequences.push_back(rng.Names());
    commands.push_back("show hostlist " + Join(sequences.back(), ","));
  }
  auto blocks = Run(commands);
  int failures = 0;
  for (size_t i = 0; i < sequences.size() && failures < 20; ++i) {
    std::string ours = CompressHostlist(sequences[i]);
    if (blocks[i].size() != 1 || blocks[i][0] != ours) {
      ++failures;
      ADD_FAILURE() << "compress " << Join(sequences[i], ",") << ": scontrol "
                    << Join(blocks[i], "|") << " | ours " << ours;
    }
    // And back: expanding what we wrote gives the names again.
    auto back = ExpandHostlist(ours);
    ASSERT_TRUE(back.ok()) << ours;
    EXPECT_EQ(*back, sequences[i]) << ours;
  }
}

// Spaces and tabs separate names too, but scontrol's interactive mode splits its input lines
// at them, so these lists go one scontrol invocation each.
TEST_F(ScontrolDiff, ListsWithWhiteSpaceOneInvocationEach) {
  Random rng(99);
  int checked = 0;
  for (int i = 0; i < 100; ++i) {
    std::string list = rng.List();
    int blanks = rng.Int(1, 3);
    for (int b = 0; b < blanks; ++b) {
      list.insert(static_cast<size_t>(rng.Int(0, static_cast<int>(list.size()))),
                  rng.Chance(70) ? " " : "\t");
    }
    // The list travels through a file so that the shell passes it as one argument, blanks kept.
    std::ofstream(dir_ / "arg") << list;
    std::string arg = "\"$(cat '" + (dir_ / "arg").string() + "')\"";
    std::string base =
        "SLURM_CONF='" + (dir_ / "slurm.conf").string() + "' timeout 20 '" + scontrol_ + "' ";
    std::string out_names = (dir_ / "names").string(), out_list = (dir_ / "list").string();
    ASSERT_NE(std::system(
                  (base + "show hostnames " + arg + " > '" + out_names + "' 2>/dev/null").c_str()),
              -1);
    ASSERT_NE(
        std::system((base + "show hostlist " + arg + " > '" + out_list + "' 2>/dev/null").c_str()),
        -1);
    const std::string& real_list = list;
    std::ifstream names_in(out_names), list_in(out_list);
    std::vector<std::string> names;
    std::string line, compressed;
    while (std::getline(names_in, line)) names.push_back(line);
    bool valid = static_cast<bool>(std::getline(list_in, compressed));
    auto expanded = ExpandHostlist(real_list);
    auto normalized = NormalizeHostlist(real_list);
    ASSERT_EQ(expanded.ok(), valid) << "'" << real_list << "'";
    ASSERT_EQ(normalized.ok(), valid) << "'" << real_list << "'";
    if (!valid) continue;
    EXPECT_EQ(*expanded, names) << "'" << real_list << "'";
    EXPECT_EQ(*normalized, compressed) << "'" << real_list << "'";
    ++checked;
  }
  EXPECT_GT(checked, 15);
}

}  // namespace
}  // namespace strun::slurm
