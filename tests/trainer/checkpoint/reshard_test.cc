// Resharding optimizer states between parallel layouts (checkpoint/reshard.h): optimizer files
// written at one (dp, tp, pp, zero) layout, read back whole and cut for every rank of another,
// must hold exactly the original per-parameter states; broken files give errors naming them.
#include "checkpoint/reshard.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "checkpoint/safetensors.h"
#include "optim/flat_buffer.h"
#include "parallel/tp_linear_sharding.h"

namespace strun::train {
namespace {

namespace fs = std::filesystem;

// A tiny Llama (nanotron names): hidden 8, 4 query heads and 2 kv heads of dim 2, intermediate 8,
// vocabulary 12, two layers; every sharded dim divides by 4.
constexpr int64_t kHidden = 8, kQRows = 8, kKvRows = 4, kInter = 8, kVocab = 12;
const FusedShapes kFused{kQRows, kKvRows, kInter};
const std::string kEmbed = "model.token_position_embeddings.pp_block.token_embedding.weight";

std::vector<std::pair<std::string, std::vector<int64_t>>> LayerShapes(int layer) {
  const std::string p = "model.decoder." + std::to_string(layer) + ".pp_block.";
  return {{p + "input_layernorm.weight", {kHidden}},
          {p + "attn.qkv_proj.weight", {kQRows + 2 * kKvRows, kHidden}},
          {p + "attn.o_proj.weight", {kHidden, kQRows}},
          {p + "post_attention_layernorm.weight", {kHidden}},
          {p + "mlp.gate_up_proj.weight", {2 * kInter, kHidden}},
          {p + "mlp.down_proj.weight", {kHidden, kInter}}};
}

// The full parameters held by pipeline stage `stage` of `pp` (pp 2: the last stage holds the tied
// embedding under its name too, as nanotron's tied lm_head).
std::vector<std::pair<std::string, std::vector<int64_t>>> StageShapes(int stage, int pp) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  if (stage == 0) out.push_back({kEmbed, {kVocab, kHidden}});
  for (int layer = 0; layer < 2; ++layer) {
    if (pp == 1 || layer == stage) {
      auto l = LayerShapes(layer);
      out.insert(out.end(), l.begin(), l.end());
    }
  }
  if (stage == pp - 1) {
    out.push_back({"model.final_layer_norm.pp_block.weight", {kHidden}});
    if (pp > 1) out.push_back({kEmbed, {kVocab, kHidden}});
  }
  return out;
}

std::optional<parallel::ShardSpec> Spec(const std::string& name) {
  auto info = NanotronShardInfo(name, kQRows, kKvRows, kInter);
  if (!info) return std::nullopt;
  return parallel::ShardSpec{info->split_dim, info->contiguous_chunks};
}

// Full states: per state name, per parameter, distinct random values.
using FullStates = std::map<std::string, std::map<std::string, at::Tensor>>;
FullStates RandomStates() {
  at::manual_seed(3);
  FullStates out;
  for (const char* state : {"flat.master", "flat.exp_avg", "flat.exp_avg_sq"}) {
    for (int stage = 0; stage < 2; ++stage) {
      for (const auto& [name, shape] : StageShapes(stage, 2)) {
        out[state][name] = at::randn(shape, at::kFloat);
      }
    }
  }
  return out;
}

struct Layout {
  int dp, tp, pp;
  bool zero;
};

std::vector<ParameterShape> LocalParams(int stage, const Layout& l) {
  std::vector<ParameterShape> out;
  for (auto [name, shape] : StageShapes(stage, l.pp)) {
    if (auto spec = Spec(name)) shape[static_cast<size_t>(spec->dim)] /= l.tp;
    out.push_back({name, shape});
  }
  return out;
}

class ReshardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("strun_reshard_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "optimizer");
  }
  void TearDown() override { fs::remove_all(dir_); }

  static Status NoVerify(const std::string&) { return {}; }

  // Writes the optimizer files of `l` as SaveCheckpoint does, each rank's tensors from
  // ShardOptimizerState of `full` (so a round trip checks both directions).
  void WriteLayout(const FullOptimizerState& full, const Layout& l) {
    for (int r = 0; r < l.pp; ++r) {
      for (int t = 0; t < l.tp; ++t) {
        for (int d = 0; d < (l.zero ? l.dp : 1); ++d) {
          const auto params = LocalParams(r, l);
          const auto target = DescribeOptimizerFile(params, l.zero, d, l.dp, t, l.tp, r, l.pp);
          auto tensors = ShardOptimizerState(full, params, target, kFused);
          ASSERT_TRUE(tensors) << tensors.error().message;
          const std::string file =
              (dir_ / "optimizer" / OptimizerFileName(l.zero, d, l.dp, t, l.tp, r, l.pp)).string();
          ASSERT_TRUE(WriteTensorsSafetensors(
              file, *tensors,
              {{"step", std::to_string(full.step)}, {kFlatLayoutKey, FlatLayoutJson(target)}}));
        }
      }
    }
  }

  Result<FullOptimizerState> Read(const Layout& l) {
    return ReadFullOptimizerState(dir_.string(), {l.dp, l.tp, l.pp, l.zero}, kFused, NoVerify);
  }

  static FullOptimizerState FromStates(const FullStates& states) {
    FullOptimizerState f;
    f.step = 4;
    f.scalars.emplace_back("step", at::full({}, 4, at::kLong));
    f.flat = states;
    return f;
  }

  fs::path dir_;
};

void ExpectSameStates(const FullStates& want, const FullOptimizerState& got) {
  ASSERT_EQ(got.flat.size(), want.size());
  for (const auto& [state, params] : want) {
    ASSERT_TRUE(got.flat.count(state)) << state;
    ASSERT_EQ(got.flat.at(state).size(), params.size()) << state;
    for (const auto& [name, t] : params) {
      ASSERT_TRUE(got.flat.at(state).count(name)) << state << " " << name;
      EXPECT_TRUE(at::equal(got.flat.at(state).at(name), t)) << state << " " << name;
    }
  }
}

TEST(CheckpointNames, NanotronNamesCarryThePipelineRank) {
  EXPECT_EQ(ModelWeightPath("model.decoder.3.pp_block.attn.qkv_proj.weight", true, 1, 2, 1, 2),
            "model/model/decoder/3/pp_block/attn/qkv_proj/"
            "model_weight_pp-rank-1-of-2_tp-rank-1-of-2.safetensors");
  EXPECT_EQ(ModelWeightPath("model.final_layer_norm.pp_block.weight", false, 1, 2, 1, 2),
            "model/model/final_layer_norm/pp_block/model_weight.safetensors");
  EXPECT_EQ(OptimizerFileName(true, 1, 2, 0, 4, 1, 2),
            "optimizer_pp-1-of-2_dp-1-of-2_tp-0-of-4_exp-0-of-1.safetensors");
  EXPECT_EQ(OptimizerFileName(false, 1, 2, 0, 4, 1, 2),
            "optimizer_pp-1-of-2_tp-0-of-4_exp-0-of-1.safetensors");
  EXPECT_EQ(RandomFileName(1, 2, 0, 4, 1, 2), "tp-0-of-4_dp-1-of-2_pp-1-of-2.safetensors");
}

TEST_F(ReshardTest, DescribeOptimizerFileIsTheTrainersFlatLayout) {
  const auto params = LocalParams(0, {2, 2, 2, true});
  optim::NamedTensors tensors;
  for (const auto& p : params) tensors.emplace_back(p.name, at::zeros(p.shape));
  const optim::FlatLayout flat(tensors, 3);
  const auto l = DescribeOptimizerFile(params, true, 2, 3, 1, 2, 0, 2);
  EXPECT_EQ(l.numel, flat.numel());
  EXPECT_EQ(l.numel % 3, 0);
  EXPECT_GT(l.numel, flat.used());  // padded
  EXPECT_EQ(std::make_pair(l.begin, l.end), flat.ShardRange(2, 3));
  ASSERT_EQ(l.segments.size(), flat.segments().size());
  for (size_t i = 0; i < l.segments.size(); ++i) {
    EXPECT_EQ(l.segments[i].name, flat.segments()[i].name);
    EXPECT_EQ(l.segments[i].shape, flat.segments()[i].shape);
    EXPECT_EQ(l.segments[i].offset, flat.segments()[i].offset);
  }
  const auto unsharded = DescribeOptimizerFile(params, false, 2, 3, 1, 2, 0, 2);
  EXPECT_EQ(unsharded.numel, flat.used());
  EXPECT_EQ(unsharded.begin, 0);
  EXPECT_EQ(unsharded.end, flat.used());
  EXPECT_EQ(unsharded.dp_rank, 0);
}

TEST_F(ReshardTest, FlatLayoutJsonRoundTrips) {
  const auto l = DescribeOptimizerFile(LocalParams(1, {2, 4, 2, true}), true, 1, 2, 3, 4, 1, 2);
  auto back = ParseFlatLayout(FlatLayoutJson(l), "f");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(FlatLayoutJson(*back), FlatLayoutJson(l));
  EXPECT_EQ(back->tp_rank, 3);
  EXPECT_EQ(back->pp_rank, 1);
  EXPECT_TRUE(back->zero);
}

TEST_F(ReshardTest, UnshardedTp1FileIsTheParametersBackToBack) {
  // Independent of the reshard code: at dp1 tp1 pp1 the flat buffer is every full tensor
  // flattened, in order.
  const FullStates states = RandomStates();
  WriteLayout(FromStates(states), {1, 1, 1, false});
  auto file = SafetensorsFile::Read(
      (dir_ / "optimizer" / OptimizerFileName(false, 0, 1, 0, 1, 0, 1)).string());
  ASSERT_TRUE(file) << file.error().message;
  auto tensors = TensorsOfSafetensors(*file, "f");
  ASSERT_TRUE(tensors);
  std::vector<at::Tensor> parts;
  for (const auto& [name, shape] : StageShapes(0, 1)) {
    parts.push_back(states.at("flat.exp_avg").at(name).reshape({-1}));
  }
  bool found = false;
  for (const auto& [name, t] : *tensors) {
    if (name != "flat.exp_avg") continue;
    found = true;
    EXPECT_TRUE(at::equal(t, at::cat(parts)));
  }
  EXPECT_TRUE(found);
}

TEST_F(ReshardTest, EveryLayoutRoundTripsThroughEveryOther) {
  const FullStates states = RandomStates();
  const std::vector<Layout> layouts = {{1, 1, 1, false}, {2, 2, 1, true},  {4, 1, 1, true},
                                       {1, 4, 1, false}, {1, 2, 2, false}, {3, 2, 2, true},
                                       {2, 4, 2, true},  {2, 1, 2, false}};
  for (const Layout& a : layouts) {
    for (const Layout& b : layouts) {
      SCOPED_TRACE("dp" + std::to_string(a.dp) + " tp" + std::to_string(a.tp) + " pp" +
                   std::to_string(a.pp) + (a.zero ? " zero" : "") + " -> dp" +
                   std::to_string(b.dp) + " tp" + std::to_string(b.tp) + " pp" +
                   std::to_string(b.pp) + (b.zero ? " zero" : ""));
      fs::remove_all(dir_ / "optimizer");
      fs::create_directories(dir_ / "optimizer");
      WriteLayout(FromStates(states), a);
      auto full = Read(a);
      ASSERT_TRUE(full) << full.error().message;
      ExpectSameStates(states, *full);
      EXPECT_EQ(full->step, 4);
      ASSERT_EQ(full->scalars.size(), 1u);
      fs::remove_all(dir_ / "optimizer");
      fs::create_directories(dir_ / "optimizer");
      WriteLayout(*full, b);
      auto again = Read(b);
      ASSERT_TRUE(again) << again.error().message;
      ExpectSameStates(states, *again);
    }
  }
}

TEST_F(ReshardTest, ZeroShardsAreTheFlatBufferCutEvenlyWithZeroPadding) {
  const FullOptimizerState full = FromStates(RandomStates());
  const Layout l{5, 2, 2, true};  // stage 1 holds 264 elements per TP rank: padded to 265
  const auto params = LocalParams(1, l);
  std::vector<at::Tensor> shards;
  OptimizerFileLayout last;
  for (int d = 0; d < 5; ++d) {
    last = DescribeOptimizerFile(params, true, d, 5, 1, 2, 1, 2);
    auto t = ShardOptimizerState(full, params, last, kFused);
    ASSERT_TRUE(t) << t.error().message;
    for (const auto& [n, v] : *t) {
      if (n == "flat.exp_avg_sq") shards.push_back(v);
    }
  }
  ASSERT_EQ(shards.size(), 5u);
  EXPECT_EQ(shards[0].numel(), shards[4].numel());
  const at::Tensor flat = at::cat(shards);
  int64_t used = 0;
  for (const auto& s : last.segments) used = s.offset + at::zeros(s.shape).numel();
  ASSERT_GT(flat.numel(), used);
  EXPECT_TRUE(
      at::equal(flat.narrow(0, used, flat.numel() - used), at::zeros({flat.numel() - used})));
  // TP rank 1's shard of the qkv projection sits where the layout says.
  auto split = SplitFlat(flat, last);
  ASSERT_TRUE(split);
  const std::string qkv = "model.decoder.1.pp_block.attn.qkv_proj.weight";
  auto want = parallel::ShardTensor(full.flat.at("flat.exp_avg_sq").at(qkv), *Spec(qkv), 1, 2);
  ASSERT_TRUE(want);
  EXPECT_TRUE(at::equal(split->at(qkv), *want));
}

TEST_F(ReshardTest, ARankReadsOnlyTheStagesThatHoldItsParameters) {
  const FullStates states = RandomStates();
  WriteLayout(FromStates(states), {2, 2, 2, true});
  std::vector<std::string> read;  // the files verified, i.e. read
  auto record = [&](const std::string& rel) {
    read.push_back(rel);
    return Status{};
  };
  std::set<std::string> needed;
  for (const auto& [name, shape] : LayerShapes(1)) needed.insert(name);
  auto r = ReadFullOptimizerState(dir_.string(), {2, 2, 2, true}, kFused, record, needed);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->step, 4);
  EXPECT_EQ(read.size(), 4u);  // stage 1's (tp, dp) files only
  for (const auto& f : read) EXPECT_NE(f.find("optimizer_pp-1-of-2"), std::string::npos) << f;
  for (const auto& [state, params] : r->flat) {
    EXPECT_EQ(params.size(), needed.size()) << state;
    for (const auto& [name, t] : params) {
      EXPECT_TRUE(needed.count(name)) << name;
      EXPECT_TRUE(at::equal(t, states.at(state).at(name))) << name;
    }
  }
  // The tied embedding: from the first stage that holds it.
  needed.insert(kEmbed);
  read.clear();
  r = ReadFullOptimizerState(dir_.string(), {2, 2, 2, true}, kFused, record, needed);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(read.size(), 8u);
  EXPECT_TRUE(
      at::equal(r->flat.at("flat.exp_avg").at(kEmbed), states.at("flat.exp_avg").at(kEmbed)));
}

TEST_F(ReshardTest, MissingFileIsNamed) {
  WriteLayout(FromStates(RandomStates()), {2, 2, 1, true});
  const std::string gone = OptimizerFileName(true, 1, 2, 1, 2, 0, 1);
  fs::remove(dir_ / "optimizer" / gone);
  auto r = Read({2, 2, 1, true});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(gone), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("dp=2 tp=2 pp=1 zero_stage=1"), std::string::npos);
}

TEST_F(ReshardTest, FileWithoutLayoutIsRefusedNamingItsLayout) {
  const std::string file =
      (dir_ / "optimizer" / OptimizerFileName(false, 0, 1, 0, 1, 0, 1)).string();
  ASSERT_TRUE(WriteTensorsSafetensors(file, {{"flat.exp_avg", at::zeros({4})}}, {{"step", "2"}}));
  auto r = Read({1, 1, 1, false});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("older strun-train"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("dp=1 tp=1 pp=1 zero_stage=0"), std::string::npos);
}

TEST_F(ReshardTest, CorruptLayoutMetadataIsAnError) {
  const auto l = DescribeOptimizerFile(LocalParams(0, {1, 1, 1, false}), false, 0, 1, 0, 1, 0, 1);
  const std::string good = FlatLayoutJson(l);
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const auto at_pos = s.find(from);
    EXPECT_NE(at_pos, std::string::npos) << from;
    return s.replace(at_pos, from.size(), to);
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "corrupt optimizer metadata"},
      {with("\"version\":1", "\"version\":7"), "version 7"},
      {with("\"tp_rank\":0", "\"tp_rank\":1"), "ranks out of range"},
      {with("\"begin\":0", "\"begin\":-5"), "not inside the buffer"},
      {with("\"offset\":0", "\"offset\":3"), "overlaps"},
      {with("\"numel\":", "\"numel\":\"x\","), "corrupt optimizer metadata"},
      {with("\"segments\":[", "\"segments\":[{\"name\":\"a\",\"shape\":[-1],\"offset\":0},"),
       "has shape [-1]"},
      // Found by fuzz_flat_layout (tests/fuzz/regressions/fuzz_flat_layout/): numbers that did
      // not fit their field were converted anyway (a double past int64: undefined behaviour; an
      // int64 pp wrapped to 1), and element counts overflowed int64.
      {with("\"offset\":0", "\"offset\":1e300"), "offset is 1e+300, not an integer in"},
      {with("\"offset\":0", "\"offset\":18446744073709551616"), "offset is"},
      {with("\"pp\":1", "\"pp\":4294967297"), "pp is 4294967297, not an integer in"},
      {with("\"tp\":1", "\"tp\":1.0"), "tp is 1.0, not an integer in"},
      {with("\"segments\":[",
            "\"segments\":[{\"name\":\"a\",\"shape\":[4294967296,4294967296],\"offset\":0},"),
       "has shape [4294967296, 4294967296] (too large)"},
      {with("\"segments\":[",
            "\"segments\":[{\"name\":\"a\",\"shape\":[1],\"offset\":"
            "9223372036854775807},"),
       "leaves the buffer"},
      {with("\"segments\":[", "\"segments\":{\"a\":[]},\"x\":["), "segments is not an array"},
  };
  for (const auto& [text, expect] : cases) {
    auto r = ParseFlatLayout(text, "opt.safetensors");
    ASSERT_FALSE(r) << text;
    EXPECT_NE(r.error().message.find(expect), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("opt.safetensors"), std::string::npos);
  }
  // In a file: the reader names it.
  const std::string file =
      (dir_ / "optimizer" / OptimizerFileName(false, 0, 1, 0, 1, 0, 1)).string();
  ASSERT_TRUE(WriteTensorsSafetensors(file, {{"flat.exp_avg", at::zeros({l.numel})}},
                                      {{kFlatLayoutKey, with("\"offset\":0", "\"offset\":3")}}));
  auto r = Read({1, 1, 1, false});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(file), std::string::npos) << r.error().message;
}

TEST_F(ReshardTest, LayoutOfAnotherRankOrTensorOfAnotherLengthIsAnError) {
  const auto l = DescribeOptimizerFile(LocalParams(0, {1, 1, 1, false}), false, 0, 1, 0, 1, 0, 1);
  const std::string file =
      (dir_ / "optimizer" / OptimizerFileName(false, 0, 1, 0, 1, 0, 1)).string();
  ASSERT_TRUE(WriteTensorsSafetensors(file, {{"flat.exp_avg", at::zeros({l.numel - 1})}},
                                      {{kFlatLayoutKey, FlatLayoutJson(l)}}));
  auto r = Read({1, 1, 1, false});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("flat.exp_avg has shape"), std::string::npos)
      << r.error().message;
  // A file whose layout says tp 2 under a tp 1 name.
  const auto other =
      DescribeOptimizerFile(LocalParams(0, {1, 2, 1, false}), false, 0, 1, 1, 2, 0, 1);
  ASSERT_TRUE(WriteTensorsSafetensors(file, {{"flat.exp_avg", at::zeros({other.numel})}},
                                      {{kFlatLayoutKey, FlatLayoutJson(other)}}));
  r = Read({1, 1, 1, false});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("describes another rank"), std::string::npos)
      << r.error().message;
}

TEST_F(ReshardTest, MismatchingShapesAreAnErrorNotACrash) {
  const FullOptimizerState full = FromStates(RandomStates());
  // A model with another hidden size.
  auto params = LocalParams(0, {1, 1, 1, false});
  params[1].shape = {kQRows + 2 * kKvRows, kHidden * 2};
  auto r = ShardOptimizerState(full, params, DescribeOptimizerFile(params, false, 0, 1, 0, 1, 0, 1),
                               kFused);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("different model config"), std::string::npos)
      << r.error().message;
  // A tp the rows do not divide by.
  auto odd = LocalParams(0, {1, 1, 1, false});
  r = ShardOptimizerState(full, odd, DescribeOptimizerFile(odd, false, 0, 1, 0, 3, 0, 1), kFused);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("tp=3"), std::string::npos) << r.error().message;
  // A parameter the checkpoint does not have.
  auto extra = LocalParams(0, {1, 1, 1, false});
  extra.push_back({"model.decoder.7.pp_block.input_layernorm.weight", {kHidden}});
  r = ShardOptimizerState(full, extra, DescribeOptimizerFile(extra, false, 0, 1, 0, 1, 0, 1),
                          kFused);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("decoder.7"), std::string::npos) << r.error().message;
  // JoinFlat / SplitFlat with the wrong sizes.
  const auto l = DescribeOptimizerFile(odd, false, 0, 1, 0, 1, 0, 1);
  EXPECT_FALSE(SplitFlat(at::zeros({l.numel + 1}), l));
  EXPECT_FALSE(JoinFlat({{kEmbed, at::zeros({2, 2})}}, l));
}

}  // namespace
}  // namespace strun::train
