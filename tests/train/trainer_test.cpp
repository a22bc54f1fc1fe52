// The training loop on a small exact model: gradients by finite differences, loss goes down,
// resume from a checkpoint reproduces the uninterrupted run bit for bit, corrupt checkpoints
// are detected and skipped, retention.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "support/bigram_model.h"
#include "support/temp_dir.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;
using testing::BigramModel;
using testing::TempDir;

constexpr int64_t kVocab = 257, kDim = 8, kExperts = 4;

std::vector<int32_t> byte_tokens(std::string_view s) {
  return std::vector<int32_t>(reinterpret_cast<const uint8_t*>(s.data()),
                              reinterpret_cast<const uint8_t*>(s.data()) + s.size());
}

std::unique_ptr<TokenDataset> make_dataset(const TempDir& dir) {
  std::string corpus;
  const char* words[] = {"the cat sat on the mat", "a dog ran in the park", "we train small models",
                         "loss goes down slowly"};
  for (int d = 0; d < 80; ++d) corpus += std::string(words[d % 4]) + " " + std::to_string(d % 7) + "\n\n";
  std::string txt = dir.write("corpus.txt", corpus);
  PrepareOptions o;
  o.out_dir = dir / "data";
  o.val_fraction = 0.1;
  o.vocab_size = kVocab;
  o.eos_id = 256;
  EXPECT_TRUE(prepare_dataset(o, {txt}, byte_tokens).is_ok());
  Result<TokenDataset> ds = TokenDataset::open(o.out_dir);
  EXPECT_TRUE(ds.is_ok()) << ds.message();
  return std::make_unique<TokenDataset>(std::move(ds.value()));
}

TrainerOptions small_options(const std::string& out) {
  TrainerOptions o;
  o.steps = 12;
  o.batch = 4;
  o.seq_len = 16;
  o.seed = 5;
  o.eval_every = 4;
  o.eval_batches = 2;
  o.save_every = 4;
  o.keep = 3;
  o.schedule.peak_lr = 3e-2;
  o.schedule.min_lr = 3e-3;
  o.schedule.final_lr = 3e-3;
  o.schedule.warmup_steps = 2;
  o.schedule.decay_start = 0.25;
  o.schedule.decay_end = 0.9;
  o.schedule.final_start = 1.0;
  o.bias_update_speed = 0.01;
  o.out_dir = out;
  o.print = false;
  return o;
}

TEST(BigramModel, GradientMatchesFiniteDifferences) {
  BigramModel m(11, 3, 2);
  m.init(3, 0.5f);
  std::vector<int32_t> tokens = {1, 5, 7, 2, 9, 3, 3, 10, 0, 4};  // batch 2, T 4
  TrainBatch b{tokens.data(), 2, 4};
  m.params().zero_grad();
  m.forward_backward(b);
  for (ParamTensor& t : m.params().tensors()) {
    for (int64_t i : {int64_t(0), t.numel / 2, t.numel - 1}) {
      const float saved = t.data[i], h = 1e-2f;
      t.data[i] = saved + h;
      double up = m.evaluate(b).main;
      t.data[i] = saved - h;
      double down = m.evaluate(b).main;
      t.data[i] = saved;
      // Central difference: O(h²·f''') ≈ 1e-4·O(1) truncation, plus f32 parameter rounding
      // (loss in double): 2e-4 absolute is a safe bound for O(0.1) gradients.
      EXPECT_NEAR(t.grad[i], (up - down) / (2 * h), 2e-4) << t.name << "[" << i << "]";
    }
  }
}

TEST(Trainer, LossDecreasesAndBiasesMove) {
  TempDir dir("trainer");
  auto ds = make_dataset(dir);
  BigramModel m(kVocab, kDim, kExperts);
  m.init(1, 0.02f);
  TrainerOptions o = small_options("");
  o.steps = 60;
  Trainer t(m, *ds, o, "{}");
  double before = t.evaluate().main;
  ASSERT_TRUE(t.run().is_ok());
  double after = t.evaluate().main;
  // Byte-level bigram statistics of a repetitive corpus: from ln(257) ≈ 5.55 to well below 3.
  EXPECT_NEAR(before, std::log(double(kVocab)), 0.05);
  EXPECT_LT(after, 3.0);
  EXPECT_LT(t.history().back().loss.main, t.history().front().loss.main);
  float lo = 0, hi = 0;
  for (float b : m.router_biases()[0]) lo = std::min(lo, b), hi = std::max(hi, b);
  EXPECT_LT(lo, 0.0f);
  EXPECT_GT(hi, 0.0f);
}

TEST(Trainer, GradAccumulationAveragesMicroBatches) {
  TempDir dir("trainer");
  auto ds = make_dataset(dir);
  auto run = [&](int64_t batch, int64_t accum) {
    BigramModel m(kVocab, kDim, kExperts);
    m.init(1, 0.02f);
    TrainerOptions o = small_options("");
    o.steps = 3;
    o.batch = batch;
    o.grad_accum = accum;
    Trainer t(m, *ds, o, "{}");
    EXPECT_TRUE(t.run().is_ok());
    return t.history();
  };
  auto a = run(4, 1), b = run(2, 2);  // the same 4 windows per step, in the same order
  for (size_t i = 0; i < a.size(); ++i) {
    // Equal-size micro-batch means averaged = the full mean; float summation order differs.
    EXPECT_NEAR(a[i].loss.main, b[i].loss.main, 1e-5);
    EXPECT_NEAR(a[i].grad_norm, b[i].grad_norm, 1e-5 * a[i].grad_norm);
  }
}

TEST(Trainer, ResumeReproducesTheUninterruptedRunBitForBit) {
  TempDir dir("trainer");
  auto ds = make_dataset(dir);
  BigramModel m(kVocab, kDim, kExperts);
  m.init(1, 0.02f);
  TrainerOptions o = small_options(dir / "run");
  Trainer full(m, *ds, o, "{\"model\": \"bigram\"}");
  ASSERT_TRUE(full.run().is_ok());
  EXPECT_TRUE(fs::exists(dir / "run/step-000012/state.json"));
  EXPECT_TRUE(fs::exists(dir / "run/step-000004/optimizer.safetensors"));

  // A fresh model with DIFFERENT initial weights and biases: everything must come from the
  // checkpoint of step 8.
  BigramModel m2(kVocab, kDim, kExperts);
  m2.init(999, 0.5f);
  m2.router_biases()[0] = {1, 2, 3, 4};
  TrainerOptions o2 = small_options(dir / "run2");
  Trainer resumed(m2, *ds, o2, "{\"model\": \"bigram\"}");
  ASSERT_TRUE(resumed.resume(dir / "run/step-000008").is_ok());
  EXPECT_EQ(resumed.step(), 8);
  ASSERT_TRUE(resumed.run().is_ok());
  ASSERT_EQ(resumed.history().size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    const StepRecord& a = full.history()[8 + i];
    const StepRecord& b = resumed.history()[i];
    EXPECT_EQ(a.step, b.step);
    EXPECT_EQ(a.loss.total, b.loss.total) << "step " << a.step;  // exact, not near
    EXPECT_EQ(a.grad_norm, b.grad_norm);
    EXPECT_EQ(a.lr, b.lr);
    EXPECT_EQ(a.max_vio, b.max_vio);
  }
  EXPECT_EQ(m.router_biases(), m2.router_biases());
  for (int64_t i = 0; i < m.params().numel(); ++i) ASSERT_EQ(m.params().data()[i], m2.params().data()[i]);

  // The metrics log holds one train record per step and evals at 4, 8, 12.
  std::ifstream in(dir / "run/metrics.jsonl");
  int train = 0, eval = 0;
  for (std::string line; std::getline(in, line);) {
    Json j = Json::parse(line);
    (j["type"] == "train" ? train : eval)++;
  }
  EXPECT_EQ(train, 12);
  EXPECT_EQ(eval, 3);
}

TEST(Trainer, Bf16MomentsAndSgdResumeToo) {
  for (int variant = 0; variant < 2; ++variant) {
    TempDir dir("trainer");
    auto ds = make_dataset(dir);
    TrainerOptions o = small_options(dir / "run");
    o.steps = 6;
    o.save_every = 3;
    if (variant == 0) o.optimizer.moments = MomentDType::BF16;
    else o.optimizer.kind = OptimizerKind::Sgd;
    BigramModel m(kVocab, kDim, kExperts);
    m.init(1, 0.02f);
    Trainer full(m, *ds, o, "{}");
    ASSERT_TRUE(full.run().is_ok());
    BigramModel m2(kVocab, kDim, kExperts);
    o.out_dir = dir / "run2";
    Trainer resumed(m2, *ds, o, "{}");
    ASSERT_TRUE(resumed.resume(dir / "run/step-000003").is_ok());
    ASSERT_TRUE(resumed.run().is_ok());
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(full.history()[3 + i].loss.total, resumed.history()[i].loss.total);
    // A checkpoint saved with one optimizer setting does not load into another.
    TrainerOptions other = o;
    if (variant == 0) other.optimizer.moments = MomentDType::F32;
    else other.optimizer.kind = OptimizerKind::AdamW;
    BigramModel m3(kVocab, kDim, kExperts);
    Trainer mismatched(m3, *ds, other, "{}");
    EXPECT_FALSE(mismatched.resume(dir / "run/step-000003").is_ok());
  }
}

TEST(Checkpoint, CorruptOrIncompleteCheckpointsAreSkippedWithANote) {
  TempDir dir("ckpt");
  auto ds = make_dataset(dir);
  BigramModel m(kVocab, kDim, kExperts);
  m.init(1, 0.02f);
  TrainerOptions o = small_options(dir / "run");
  o.keep = 2;
  Trainer t(m, *ds, o, "{}");
  ASSERT_TRUE(t.run().is_ok());
  // keep = 2: steps 8 and 12 remain, `latest` names step 12.
  EXPECT_FALSE(fs::exists(dir / "run/step-000004"));
  EXPECT_TRUE(fs::exists(dir / "run/step-000008"));
  std::vector<std::string> notes;
  Result<std::string> found = find_resume_checkpoint(dir / "run", &notes);
  ASSERT_TRUE(found.is_ok()) << found.message();
  EXPECT_EQ(fs::path(*found).filename(), "step-000012");
  EXPECT_TRUE(notes.empty());

  // Flip one byte of the newest checkpoint's parameters: CRC mismatch, fall back to step 8.
  {
    std::fstream f(dir / "run/step-000012/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-5, std::ios::end);
    char c;
    f.read(&c, 1);
    f.seekp(-5, std::ios::end);
    f.put(char(c ^ 1));
  }
  Result<TrainState> bad = read_checkpoint_state(dir / "run/step-000012");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.message().find("CRC-32"), std::string::npos) << bad.message();
  found = find_resume_checkpoint(dir / "run", &notes);
  ASSERT_TRUE(found.is_ok());
  EXPECT_EQ(fs::path(*found).filename(), "step-000008");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("step-000012"), std::string::npos) << notes[0];

  // An incomplete directory (no state.json) and a missing `latest` are handled the same way.
  fs::remove(dir / "run/step-000008/state.json");
  fs::remove(dir / "run/latest");
  notes.clear();
  found = find_resume_checkpoint(dir / "run", &notes);
  ASSERT_FALSE(found.is_ok());
  EXPECT_NE(found.message().find("no valid checkpoint"), std::string::npos);
  EXPECT_EQ(notes.size(), 3u);  // no latest; two invalid checkpoints

  // Loading into a model of another shape fails before anything is overwritten.
  TempDir dir2("ckpt2");
  TrainerOptions o2 = small_options(dir2 / "run");
  o2.steps = 4;
  BigramModel a(kVocab, kDim, kExperts);
  Trainer ta(a, *ds, o2, "{}");
  ASSERT_TRUE(ta.run().is_ok());
  BigramModel b(kVocab, kDim + 1, kExperts);
  b.init(7, 0.1f);
  float first = b.params().data()[0];
  Trainer tb(b, *ds, o2, "{}");
  Status st = tb.resume(dir2 / "run/step-000004");
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("model.embed_tokens.weight"), std::string::npos) << st.message();
  EXPECT_EQ(b.params().data()[0], first);
}

}  // namespace
}  // namespace dsv3
