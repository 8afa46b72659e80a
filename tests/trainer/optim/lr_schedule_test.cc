// Tests of optim/lr_schedule.h: values at the steps where nanotron's lr_lambda changes phase.
#include "optim/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>

namespace strun::optim {
namespace {

// The tutorial's schedule: lr 1e-3, 150 linear warm-up steps, cosine to 1e-5 over 1500 steps.
LrScheduleOptions Tutorial() {
  LrScheduleOptions o;
  o.learning_rate = 1e-3;
  o.lr_warmup_steps = 150;
  o.lr_warmup_style = WarmupStyle::kLinear;
  o.lr_decay_style = DecayStyle::kCosine;
  o.min_decay_lr = 1e-5;
  o.total_training_steps = 1500;
  return o;
}

TEST(LrScheduleTest, TutorialCosineSchedule) {
  LrSchedule s(Tutorial());
  EXPECT_EQ(s.decay_steps(), 1350);
  EXPECT_EQ(s.decay_starting_step(), 150);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(1), 1e-3 / 150);  // nanotron: 0 (LambdaLR lag)
  EXPECT_DOUBLE_EQ(s.NanotronLearningRateAt(1), 0.0);
  EXPECT_DOUBLE_EQ(s.NanotronLearningRateAt(2), 1e-3 / 150);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(75), 1e-3 * 75 / 150);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(150), 1e-3);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(151), 1e-5 + (1e-3 - 1e-5) * (1 + std::cos(M_PI / 1350)) / 2);
  EXPECT_NEAR(s.LearningRateAt(150 + 675), (1e-3 + 1e-5) / 2, 1e-15);
  EXPECT_NEAR(s.LearningRateAt(1499), 1e-5 + (1e-3 - 1e-5) * (1 + std::cos(M_PI * 1349 / 1350)) / 2,
              1e-18);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(1500), 1e-5);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(5000), 1e-5);
}

TEST(LrScheduleTest, LinearDecayWithConstantPhase) {
  LrScheduleOptions o = Tutorial();
  o.lr_warmup_steps = 10;
  o.lr_decay_style = DecayStyle::kLinear;
  o.lr_decay_starting_step = 50;
  o.lr_decay_steps = 100;
  o.min_decay_lr = 0.0;
  LrSchedule s(o);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(5), 5e-4);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(11), 1e-3);  // constant phase
  EXPECT_DOUBLE_EQ(s.LearningRateAt(49), 1e-3);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(50), 1e-3);  // decay starts at its full value
  EXPECT_DOUBLE_EQ(s.LearningRateAt(75), 1e-3 * 75 / 100);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(149), 1e-3 * 1 / 100);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(150), 0.0);
}

TEST(LrScheduleTest, OneMinusSqrtDecay) {
  LrScheduleOptions o = Tutorial();
  o.lr_warmup_steps = 0;
  o.lr_decay_style = DecayStyle::kOneMinusSqrt;
  o.total_training_steps = 100;
  o.min_decay_lr = 1e-4;
  LrSchedule s(o);
  EXPECT_EQ(s.decay_steps(), 100);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(0), 0.0);  // linear warm-up of 0 steps at step 0
  EXPECT_NEAR(s.LearningRateAt(25), 1e-4 + (1e-3 - 1e-4) * (1 - std::sqrt(0.25)), 1e-18);
  EXPECT_NEAR(s.LearningRateAt(64), 1e-4 + (1e-3 - 1e-4) * (1 - 0.8), 1e-18);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(100), 1e-4);
}

TEST(LrScheduleTest, ConstantWarmupAndNoScheduleAtAll) {
  LrScheduleOptions o = Tutorial();
  o.lr_warmup_style = WarmupStyle::kConstant;
  LrSchedule s(o);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(1), 1e-3);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(150), 1e-3);

  LrScheduleOptions flat;
  flat.learning_rate = 3e-4;
  flat.lr_warmup_steps = 0;
  flat.lr_decay_steps = 0;
  flat.total_training_steps = 10;
  LrSchedule f(flat);
  EXPECT_DOUBLE_EQ(f.LearningRateAt(1), 3e-4);
  EXPECT_DOUBLE_EQ(f.LearningRateAt(10), 3e-4);
  EXPECT_DOUBLE_EQ(f.NanotronLearningRateAt(1), 3e-4);
}

TEST(LrScheduleTest, DefaultMinDecayLrIsTheLearningRate) {
  LrScheduleOptions o = Tutorial();
  o.min_decay_lr.reset();
  LrSchedule s(o);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(800), 1e-3);
  EXPECT_DOUBLE_EQ(s.LearningRateAt(1500), 1e-3);
}

TEST(LrScheduleTest, ParsesNanotronStyleNames) {
  EXPECT_EQ(*ParseWarmupStyle("constant", "k"), WarmupStyle::kConstant);
  EXPECT_EQ(*ParseDecayStyle("1-sqrt", "k"), DecayStyle::kOneMinusSqrt);
  auto bad = ParseDecayStyle("exp", "optimizer.learning_rate_scheduler.lr_decay_style");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("optimizer.learning_rate_scheduler.lr_decay_style"),
            std::string::npos);
}

}  // namespace
}  // namespace strun::optim
