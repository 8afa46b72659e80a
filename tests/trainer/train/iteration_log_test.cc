// nanotron's log formatting: human_format, the iteration line and get_flops.
#include "train/iteration_log.h"

#include <gtest/gtest.h>

#include <cmath>

namespace strun::train {
namespace {

TEST(HumanFormat, MatchesNanotron) {
  // Expected strings computed with nanotron.logging.human_format (Python 3).
  EXPECT_EQ(HumanFormat(0), "0");
  EXPECT_EQ(HumanFormat(0.000123456), "0.000123");
  EXPECT_EQ(HumanFormat(1.5e-05), "1.5e-05");
  EXPECT_EQ(HumanFormat(0.99999), "1");
  EXPECT_EQ(HumanFormat(1), "1");
  EXPECT_EQ(HumanFormat(10.8251), "10.8");
  EXPECT_EQ(HumanFormat(999.4), "999");
  EXPECT_EQ(HumanFormat(999.6), "1K");
  EXPECT_EQ(HumanFormat(1234567), "1.23M");
  EXPECT_EQ(HumanFormat(32768), "32.8K");
  EXPECT_EQ(HumanFormat(64), "64");
  EXPECT_EQ(HumanFormat(109395456), "109M");
  EXPECT_EQ(HumanFormat(3.2e12), "3.2T");
  EXPECT_EQ(HumanFormat(-2500), "-2.5K");
}

TEST(IterationLine, HasNanotronsShape) {
  std::string line = FormatIterationLine(
      3, 1500, {{"consumed_tokens", 3 * 65536.0}, {"lm_loss", 10.8251}, {"lr", 2e-05}});
  EXPECT_EQ(line, "iteration: 3 / 1500 | consumed_tokens: 197K | lm_loss: 10.8 | lr: 2e-05");
}

TEST(Flops, TutorialModelMatchesNanotronsFormula) {
  // get_flops(num_layers=12, hidden_size=768, num_heads=12, num_key_value_heads=12,
  //           vocab_size=50257, seq_len=512, ffn_hidden_size=1536, batch_size=128)[0]
  FlopsShape s{12, 768, 12, 12, 50257, 1536};
  const double L = 12, B = 128, T = 512, h = 768, nh = 12, d = 64, F = 1536, V = 50257;
  double fwd = 2 * L * B * T * h * nh * d + 2 * L * B * T * h * 2 * nh * d +
               2 * L * B * nh * T * d * T + 2 * L * B * nh * T * T * d +
               2 * L * B * nh * T * d * h + 4 * L * B * T * h * F + 2 * L * B * T * F * h +
               2 * B * T * h * V;
  EXPECT_DOUBLE_EQ(LlamaTrainingFlops(s, 512, 128), 3 * fwd);
  EXPECT_EQ(LlamaTrainingFlops(s, 512, 128), 46719345623040.0);  // Python's value
}

TEST(LogLevel, ParsesNanotronsNames) {
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("warning"), LogLevel::kWarning);
  EXPECT_EQ(*ParseLogLevel("passive"), LogLevel::kInfo);
  EXPECT_FALSE(ParseLogLevel("loud"));
}

}  // namespace
}  // namespace strun::train
