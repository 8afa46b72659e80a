// ValidateForTraining refuses values that would make a run train NaN or overflow its sizes:
// non-finite floats and sizes whose products exceed the trainer's 64-bit arithmetic. Each case is
// the tutorial file with one line changed; the error names the key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "test_configs.h"

namespace strun::train {
namespace {

using ::testing::HasSubstr;
using testing::Replace;
using testing::TutorialText;

struct Case {
  const char* name;
  const char* from;
  const char* to;
  const char* message;
};

class UntrainableConfig : public ::testing::TestWithParam<Case> {};

TEST_P(UntrainableConfig, IsRefusedNamingTheKey) {
  const Case& c = GetParam();
  std::string text = TutorialText();
  // Several lines may change in one case, separated by '|'.
  std::string from = c.from, to = c.to;
  for (std::size_t f = 0, t = 0; f <= from.size();) {
    std::size_t fe = from.find('|', f), te = to.find('|', t);
    if (fe == std::string::npos) fe = from.size();
    if (te == std::string::npos) te = to.size();
    text = Replace(text, from.substr(f, fe - f), to.substr(t, te - t));
    f = fe + 1;
    t = te + 1;
  }
  ASSERT_EQ(text.find("not found>>"), std::string::npos) << c.from;
  Result<Config> r = ParseConfig(text, "cfg.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;  // a valid file: the run cannot train it
  Status s = ValidateForTraining(*r, "cfg.yaml");
  ASSERT_FALSE(s.ok()) << "accepted: " << c.name;
  EXPECT_THAT(s.error().message, HasSubstr(c.message));
  EXPECT_THAT(s.error().message, ::testing::StartsWith("cfg.yaml: "));
}

const Case kCases[] = {
    {"nan_learning_rate", "    learning_rate: 0.001", "    learning_rate: .nan",
     "optimizer.learning_rate_scheduler.learning_rate is nan; it must be a finite number"},
    {"minus_inf_learning_rate", "    learning_rate: 0.001", "    learning_rate: -.inf",
     "optimizer.learning_rate_scheduler.learning_rate is -inf"},
    {"inf_min_decay_lr", "    min_decay_lr: 0.00001", "    min_decay_lr: .inf",
     "optimizer.learning_rate_scheduler.min_decay_lr is inf"},
    {"nan_weight_decay", "  weight_decay: 0.01", "  weight_decay: .nan",
     "optimizer.weight_decay is nan"},
    {"inf_clip_grad", "  clip_grad: 1.0", "  clip_grad: .inf", "optimizer.clip_grad is inf"},
    {"nan_adam_eps", "    adam_eps: 1.0e-08", "    adam_eps: .nan",
     "optimizer.optimizer_factory.adam_eps is nan"},
    {"nan_init_std", "    std: 0.025", "    std: .nan", "model.init_method.std is nan"},
    {"nan_rms_norm_eps", "    rms_norm_eps: 1.0e-05", "    rms_norm_eps: .nan",
     "model.model_config.rms_norm_eps is nan"},
    {"int64_max_vocab", "    vocab_size: 50257", "    vocab_size: 9223372036854775807",
     "the padded vocabulary (model.model_config.vocab_size) exceeds 2^60 elements"},
    {"embedding_overflow", "    hidden_size: 768", "    hidden_size: 864691128455135232",
     "the embedding (model.model_config.vocab_size x hidden_size)"},
    {"mlp_overflow", "    intermediate_size: 1536", "    intermediate_size: 1125899906842624",
     "the MLP (model.model_config.hidden_size x intermediate_size)"},
    {"layers_overflow", "    intermediate_size: 1536|    num_hidden_layers: 12",
     "    intermediate_size: 1099511627776|    num_hidden_layers: 1048576",
     "the decoder layers (model.model_config.num_hidden_layers x (hidden_size, "
     "intermediate_size))"},
    {"micro_batch_overflow", "  micro_batch_size: 64", "  micro_batch_size: 4611686018427387904",
     "a micro-batch (tokens.micro_batch_size x sequence_length)"},
    {"logits_overflow", "  micro_batch_size: 64", "  micro_batch_size: 1099511627776",
     "the logits of a micro-batch (tokens.micro_batch_size x sequence_length x "
     "model.model_config.vocab_size)"},
    {"global_batch_overflow", "  batch_accumulation_per_replica: 1",
     "  batch_accumulation_per_replica: 1125899906842624",
     "the global batch (tokens.micro_batch_size x batch_accumulation_per_replica x "
     "parallelism.dp x sequence_length)"},
    {"tokens_trained_overflow", "  train_steps: 1500", "  train_steps: 1125899906842624",
     "the number of tokens trained (tokens.train_steps x the global batch x sequence_length)"},
};

INSTANTIATE_TEST_SUITE_P(Validate, UntrainableConfig, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ValidateForTraining, TutorialAndLargeButRepresentableSizesPass) {
  Result<Config> r = LoadConfig(testing::TutorialPath());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(ValidateForTraining(*r).ok());
  // A 1T-parameter-class shape is big, not an overflow.
  Config c = *r;
  c.model.model_config.hidden_size = 36864;
  c.model.model_config.intermediate_size = 147456;
  c.model.model_config.num_hidden_layers = 128;
  c.model.model_config.vocab_size = 256000;
  Status s = ValidateForTraining(c);
  EXPECT_TRUE(s.ok()) << s.error().message;
}

}  // namespace
}  // namespace strun::train
