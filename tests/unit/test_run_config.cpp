// quopt's schema and make_run_config (io/run_config.hpp), and the shipped config files under inputs/.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/config.hpp"
#include "io/run_config.hpp"
#include "support/error_of.hpp"

namespace fs = std::filesystem;
using quopt::Config;
using quopt::quopt_schema;
using quopt::testing::error_of;
using Strings = std::vector<std::string>;

namespace {

fs::path repo_root() {
  return fs::path(__FILE__).parent_path().parent_path().parent_path();
}

Config defaults() {
  return Config::defaults(quopt_schema());
}

// make_run_config's error for the defaults with the given overrides.
std::string constraint_error(const Strings& overrides) {
  Config c = defaults();
  for (const auto& o : overrides) c.apply_override(o);
  return error_of([&] { quopt::make_run_config(c); });
}

#define EXPECT_HAS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "in: " << (text)

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

}  // namespace

TEST(RunConfigSchema, HasEveryKeyOfTheStructs) {
  // The keys the structs in io/run_config.hpp and model/config.hpp need (one per field).
  const std::set<std::string> expected = {"model.name",
                                          "model.d_model",
                                          "model.n_layers",
                                          "model.n_heads",
                                          "model.n_kv_heads",
                                          "model.mlp",
                                          "model.mlp_ratio",
                                          "model.tie_embeddings",
                                          "model.qk_norm",
                                          "model.rope_theta",
                                          "model.vocab_size",
                                          "model.seq_len",
                                          "model.z_loss",
                                          "model.init_std",
                                          "model.init_trunc",
                                          "model.norm_eps",
                                          "data.train",
                                          "data.val",
                                          "data.tokenizer",
                                          "tokenize.inputs",
                                          "tokenize.out_dir",
                                          "tokenize.tokenizer",
                                          "tokenize.vocab_size",
                                          "tokenize.val_fraction",
                                          "tokenize.model_type",
                                          "tokenize.max_train_lines",
                                          "train.steps",
                                          "train.tokens_per_param",
                                          "train.batch_size",
                                          "train.micro_batch_size",
                                          "train.seed",
                                          "train.grad_clip",
                                          "train.log_every",
                                          "train.val_every",
                                          "train.val_points",
                                          "train.val_batches",
                                          "train.device",
                                          "train.precision",
                                          "train.max_nonfinite_skips",
                                          "schedule.name",
                                          "schedule.warmup_fraction",
                                          "schedule.decay_fraction",
                                          "schedule.min_lr_ratio",
                                          "optimizer.name",
                                          "optimizer.lr",
                                          "optimizer.weight_decay",
                                          "optimizer.decay_roles",
                                          "optimizer.adamw.beta1",
                                          "optimizer.adamw.beta2",
                                          "optimizer.adamw.eps",
                                          "quant.qat",
                                          "quant.qat_head",
                                          "quant.weight_bits",
                                          "quant.act_bits",
                                          "quant.trust_factor",
                                          "quant.hadamard_block",
                                          "quant.layers",
                                          "quant.schemes",
                                          "quant.calibration_batches",
                                          "quant.record_rows",
                                          "track.every",
                                          "track.scheme",
                                          "track.sequences",
                                          "eval.tasks",
                                          "eval.builtin_examples",
                                          "eval.val_batches",
                                          "checkpoint.every",
                                          "checkpoint.keep",
                                          "snapshot.enabled",
                                          "snapshot.after_fraction",
                                          "parallel.pipeline_stages",
                                          "parallel.collective_timeout",
                                          "output.dir"};
  const Strings keys = quopt_schema().keys();
  // Every struct field has its key (optimizer-specific sections optimizer.<name>.* come on top).
  for (const auto& k : expected) EXPECT_NE(quopt_schema().find(k), nullptr) << k;
  for (const auto& k : keys)
    EXPECT_TRUE(expected.count(k) || k.rfind("optimizer.", 0) == 0) << "unexpected key " << k;
  const Strings sections = quopt_schema().sections();
  EXPECT_EQ(Strings(sections.begin(), sections.begin() + 7),
            (Strings{"model", "data", "tokenize", "train", "schedule", "optimizer", "optimizer.adamw"}));
  for (const auto& s : quopt_schema().specs()) EXPECT_GT(s.doc.size(), 20u) << s.key << " needs a doc line";
  EXPECT_EQ(quopt_schema().find("model.mlp")->choices, (Strings{"relu2", "swiglu"}));
  EXPECT_EQ(quopt_schema().find("schedule.name")->choices, (Strings{"wsd", "cosine", "linear", "constant"}));
  EXPECT_EQ(quopt_schema().find("tokenize.model_type")->choices, (Strings{"bpe", "unigram"}));
  EXPECT_EQ(quopt_schema().find("optimizer.decay_roles")->choices, (Strings{"hidden", "embedding", "gain"}));
}

TEST(RunConfigSchema, DefaultsFollowThePaperAndOlmo2) {
  const quopt::RunConfig rc = quopt::make_run_config(defaults());
  // The paper (arXiv 2509.23500): ReLU^2 MLP with ratio 4, tied embeddings, WSD 5% warmup, 20% decay to 0.
  EXPECT_EQ(rc.model.mlp, quopt::MlpKind::Relu2);
  EXPECT_EQ(rc.model.mlp_ratio, 4.0);
  EXPECT_TRUE(rc.model.tie_embeddings);
  EXPECT_EQ(rc.schedule.kind, quopt::ScheduleKind::WSD);
  EXPECT_EQ(rc.schedule.warmup_fraction, 0.05);
  EXPECT_EQ(rc.schedule.decay_fraction, 0.2);
  EXPECT_EQ(rc.schedule.min_lr_ratio, 0.0);
  EXPECT_EQ(rc.train.tokens_per_param, 20.0);
  // QAT, when on, quantizes the blocks' linears and not the head, as the paper (gvlassis/ant can do both).
  EXPECT_FALSE(rc.quant.qat_head);
  // OLMo2 (arXiv 2501.00656): QK-norm, RMSNorm eps 1e-6, RoPE 500000, init 0.02 truncated at 3 sigma,
  // z-loss off by default here, grad clip 1, weight decay 0.1, AdamW (0.9, 0.95, 1e-8).
  EXPECT_TRUE(rc.model.qk_norm);
  EXPECT_EQ(rc.model.norm_eps, 1e-6);
  EXPECT_EQ(rc.model.rope_theta, 500000.0);
  EXPECT_EQ(rc.model.init_std, 0.02);
  EXPECT_EQ(rc.model.init_trunc, 3.0);
  EXPECT_EQ(rc.model.z_loss, 0.0);
  EXPECT_EQ(rc.train.grad_clip, 1.0);
  EXPECT_EQ(rc.optimizer.name, "adamw");
  EXPECT_EQ(rc.optimizer.weight_decay, 0.1);
  EXPECT_EQ(rc.optimizer.decay_roles, Strings{"hidden"});
  EXPECT_EQ(rc.optimizer.adamw_beta1, 0.9);
  EXPECT_EQ(rc.optimizer.adamw_beta2, 0.95);
  EXPECT_EQ(rc.optimizer.adamw_eps, 1e-8);
  EXPECT_TRUE(fs::path(rc.out_dir).is_absolute());
}

TEST(RunConfig, ResolvesDerivedValues) {
  Config c = defaults();
  c.set("model.d_model", "128");
  c.set("model.n_heads", "8");
  c.set("train.batch_size", "12");
  c.set("model.seq_len", "32");
  const quopt::RunConfig rc = quopt::make_run_config(c);
  EXPECT_EQ(rc.model.n_kv_heads, 8);                       // 0: n_heads
  EXPECT_EQ(rc.train.micro_batch_size, 12);                // 0: batch_size
  EXPECT_EQ(rc.tokenize.vocab_size, rc.model.vocab_size);  // 0: model.vocab_size
  // 0 steps: 20 tokens per parameter (Chinchilla), rounded up to whole steps of 12 x 32 tokens.
  const double tokens = 20.0 * static_cast<double>(rc.model.total_params());
  const auto steps = static_cast<std::int64_t>(std::ceil(tokens / (12.0 * 32.0)));
  EXPECT_EQ(rc.train.steps, steps);
  EXPECT_GE(static_cast<double>(rc.train.steps) * 12 * 32, tokens);
  EXPECT_LT(static_cast<double>(rc.train.steps - 1) * 12 * 32, tokens);

  c.set("train.steps", "77");
  c.set("model.n_kv_heads", "2");
  c.set("train.micro_batch_size", "4");
  c.set("tokenize.vocab_size", "1000");
  c.set("schedule.name", "cosine");
  c.set("model.mlp", "swiglu");
  c.set("train.seed", "123456789012");
  c.set("train.device", "cuda");
  c.set("train.precision", "bf16");
  const quopt::RunConfig rc2 = quopt::make_run_config(c);
  EXPECT_EQ(rc.train.device, "cpu");  // the defaults
  EXPECT_EQ(rc.train.precision, "fp32");
  EXPECT_EQ(rc2.train.device, "cuda");
  EXPECT_EQ(rc2.train.precision, "bf16");
  EXPECT_EQ(rc2.train.steps, 77);
  EXPECT_EQ(rc2.model.n_kv_heads, 2);
  EXPECT_EQ(rc2.train.micro_batch_size, 4);
  EXPECT_EQ(rc2.tokenize.vocab_size, 1000);
  EXPECT_EQ(rc2.schedule.kind, quopt::ScheduleKind::Cosine);
  EXPECT_EQ(rc2.model.mlp, quopt::MlpKind::SwiGLU);
  EXPECT_EQ(rc2.train.seed, 123456789012u);

  // train.val_points spreads that many validations over the run, whatever its length.
  EXPECT_EQ(rc2.train.val_every, 50);  // the default, val_points = 0
  c.set("train.val_points", "20");
  EXPECT_EQ(quopt::make_run_config(c).train.val_every, 3);  // 77 / 20
  c.set("train.steps", "5");
  EXPECT_EQ(quopt::make_run_config(c).train.val_every, 1);
}

TEST(RunConfig, CrossKeyConstraintErrors) {
  std::string m = constraint_error({"model.d_model=100", "model.n_heads=3"});
  EXPECT_HAS(m, "model.d_model = 100");
  EXPECT_HAS(m, "model.n_heads = 3 (set in --set)");
  EXPECT_HAS(m, "not divisible");

  m = constraint_error({"model.d_model=60", "model.n_heads=4"});  // head_dim 15
  EXPECT_HAS(m, "head_dim");
  EXPECT_HAS(m, "odd");
  EXPECT_HAS(m, "RoPE");

  m = constraint_error({"model.n_heads=4", "model.n_kv_heads=3"});
  EXPECT_HAS(m, "model.n_kv_heads = 3");
  m = constraint_error({"model.n_heads=4", "model.n_kv_heads=8"});
  EXPECT_HAS(m, "model.n_kv_heads = 8");

  m = constraint_error({"train.batch_size=16", "train.micro_batch_size=5"});
  EXPECT_HAS(m, "train.batch_size = 16");
  EXPECT_HAS(m, "train.micro_batch_size = 5");

  m = constraint_error({"schedule.warmup_fraction=0.5", "schedule.decay_fraction=0.6"});
  EXPECT_HAS(m, "schedule.warmup_fraction = 0.5");
  EXPECT_HAS(m, "schedule.decay_fraction = 0.6");
  EXPECT_HAS(m, "at most 1");

  m = constraint_error({"optimizer.decay_roles=hidden,gain,hidden"});
  EXPECT_HAS(m, "optimizer.decay_roles");
  EXPECT_HAS(m, "twice");
  // An invalid role is rejected when it is set, with the allowed roles.
  Config c = defaults();
  m = error_of([&] { c.set("optimizer.decay_roles", "hidden,bias"); });
  EXPECT_HAS(m, "optimizer.decay_roles");
  EXPECT_HAS(m, "hidden, embedding, gain");

  m = constraint_error({"model.vocab_size=4096", "tokenize.vocab_size=8000"});
  EXPECT_HAS(m, "tokenize.vocab_size = 8000");
  EXPECT_HAS(m, "model.vocab_size = 4096");

  m = constraint_error({"model.n_layers=2", "parallel.pipeline_stages=3"});
  EXPECT_HAS(m, "parallel.pipeline_stages = 3");
  EXPECT_HAS(m, "model.n_layers = 2");

  EXPECT_HAS(constraint_error({"output.dir="}), "output.dir");

  m = constraint_error({"quant.qat_head=true"});  // QAT of the head without QAT
  EXPECT_HAS(m, "quant.qat_head = true (set in --set)");
  EXPECT_HAS(m, "quant.qat = \"none\" (default)");

  // An MLP must have a width: d_model * mlp_ratio rounds to a multiple of 8, 0 for a tiny ratio.
  m = constraint_error({"model.d_model=32", "model.mlp_ratio=0.001"});
  EXPECT_HAS(m, "model.mlp_ratio = 0.001");
  EXPECT_HAS(m, "width 0");
  EXPECT_EQ(quopt::make_run_config([] {
              Config narrow = defaults();
              narrow.apply_override("model.d_model=32");
              narrow.apply_override("model.mlp_ratio=0.02");  // 0.64 rounds to 1, then up to 8
              return narrow;
            }())
                .model.mlp_hidden(),
            8);

  // Values from a file are reported with that file.
  const fs::path f =
      fs::temp_directory_path() / ("quopt_test_run_config_" + std::to_string(::getpid()) + ".toml");
  std::ofstream(f) << "[model]\nd_model = 100\nn_heads = 3\n";
  m = error_of([&] { quopt::make_run_config(Config::load(quopt_schema(), f.string())); });
  fs::remove(f);
  EXPECT_HAS(m, "model.n_heads = 3 (set in " + f.string() + ")");
}

TEST(RunConfig, SingleKeyRangesAreCheckedWhenSet) {
  auto set_error = [](const std::string& assignment) {
    Config c = defaults();
    return error_of([&] { c.apply_override(assignment); });
  };
  EXPECT_HAS(set_error("optimizer.lr=0"), "'optimizer.lr' = 0.0 is out of range; allowed: > 0");
  EXPECT_HAS(set_error("optimizer.adamw.beta1=1"),
             "'optimizer.adamw.beta1' = 1.0 is out of range; allowed: [0, 1)");
  EXPECT_HAS(set_error("optimizer.adamw.beta2=1.5"), "[0, 1)");
  EXPECT_HAS(set_error("optimizer.adamw.eps=0"), "'optimizer.adamw.eps'");
  EXPECT_HAS(set_error("model.init_std=0"), "'model.init_std'");
  EXPECT_HAS(set_error("model.norm_eps=-1e-6"), "'model.norm_eps'");
  EXPECT_HAS(set_error("model.rope_theta=0"), "'model.rope_theta'");
  EXPECT_HAS(set_error("model.mlp_ratio=0"), "'model.mlp_ratio'");
  EXPECT_HAS(set_error("model.d_model=0"), "allowed: >= 1");
  EXPECT_HAS(set_error("schedule.warmup_fraction=1.5"), "allowed: [0, 1]");
  EXPECT_HAS(set_error("schedule.name=step"), "wsd, cosine, linear, constant");
  EXPECT_HAS(set_error("model.mlp=gelu"), "relu2, swiglu");
  EXPECT_HAS(set_error("tokenize.model_type=wordpiece"), "bpe, unigram");
  EXPECT_HAS(set_error("optimizer.name=sgd"), "adamw");
  EXPECT_HAS(set_error("train.stepz=3"), "did you mean 'train.steps'?");
}

TEST(RunConfig, ResolvedConfigRoundTrips) {
  Config c = defaults();
  for (const std::string o :
       {"model.name=rt", "model.d_model=96", "model.n_heads=6", "model.n_kv_heads=3", "model.mlp=swiglu",
        "model.mlp_ratio=2.6666666666666665", "model.z_loss=1e-5", "data.train=shards/t.bin",
        "data.val=/v.bin", "tokenize.inputs=a.txt,b.txt", "train.steps=11", "train.micro_batch_size=4",
        "schedule.name=linear", "optimizer.lr=3e-4", "optimizer.decay_roles=hidden,embedding,gain",
        "optimizer.adamw.beta2=0.999", "checkpoint.every=5", "output.dir=out/x"}) {
    c.apply_override(o);
  }
  const std::string text = c.to_toml();
  const Config back = Config::from_toml_string(quopt_schema(), text, "run.h5:/config");
  EXPECT_TRUE(back.same_values(c));
  for (const auto& k : quopt_schema().keys()) EXPECT_TRUE(back.get(k) == c.get(k)) << k;
  const quopt::RunConfig a = quopt::make_run_config(c), b = quopt::make_run_config(back);
  EXPECT_EQ(a.model.mlp_ratio, b.model.mlp_ratio);
  EXPECT_EQ(a.data.train, b.data.train);
  EXPECT_EQ(a.tokenize.inputs, b.tokenize.inputs);
  EXPECT_EQ(a.train.steps, b.train.steps);
  EXPECT_EQ(a.out_dir, b.out_dir);
}

TEST(ShippedConfigs, ModelFilesMatchTheSizeInTheirName) {
  const fs::path dir = repo_root() / "inputs" / "models";
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  const std::regex sized("olmo2-([0-9]+(?:\\.[0-9]+)?)([mb])");
  std::set<std::string> sizes;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".toml") continue;
    const std::string stem = entry.path().stem().string();
    SCOPED_TRACE(entry.path().string());
    const Config c = Config::load(quopt_schema(), entry.path().string());
    // Model files hold only [model].
    for (const auto& k : quopt_schema().keys()) {
      if (k.rfind("model.", 0) != 0) {
        EXPECT_EQ(c.source(k), "default") << k;
      }
    }
    const quopt::RunConfig rc = quopt::make_run_config(c);
    EXPECT_EQ(rc.model.name, stem);
    std::smatch match;
    if (!std::regex_match(stem, match, sized)) continue;
    const double size = std::stod(match[1].str()) * (match[2].str() == "m" ? 1e6 : 1e9);
    const double total = static_cast<double>(rc.model.total_params());
    EXPECT_LE(std::fabs(total / size - 1.0), 0.10) << stem << ": " << total << " parameters";
    EXPECT_EQ(rc.model.vocab_size, 100352);  // OLMo2's padded vocabulary
    EXPECT_EQ(rc.model.seq_len, 2048);
    EXPECT_TRUE(rc.model.head_dim() == 64 || rc.model.head_dim() == 128) << rc.model.head_dim();
    sizes.insert(stem);
  }
  // The paper's six sizes (arXiv 2509.23500).
  EXPECT_EQ(sizes, (std::set<std::string>{"olmo2-50m", "olmo2-125m", "olmo2-350m", "olmo2-500m", "olmo2-760m",
                                          "olmo2-1.5b"}));

  const quopt::RunConfig tiny =
      quopt::make_run_config(Config::load(quopt_schema(), (dir / "olmo2-tiny.toml").string()));
  EXPECT_EQ(tiny.model.d_model, 64);
  EXPECT_EQ(tiny.model.n_layers, 2);
  EXPECT_EQ(tiny.model.n_heads, 4);
  EXPECT_EQ(tiny.model.seq_len, 64);
  EXPECT_EQ(tiny.model.vocab_size, 4096);
  const quopt::RunConfig small =
      quopt::make_run_config(Config::load(quopt_schema(), (dir / "olmo2-small.toml").string()));
  EXPECT_LE(std::fabs(static_cast<double>(small.model.total_params()) / 10e6 - 1.0), 0.10);
}

TEST(ShippedConfigs, AdamwFileHoldsTheDefaults) {
  const fs::path f = repo_root() / "inputs" / "optimizers" / "adamw.toml";
  const Config c = Config::load(quopt_schema(), f.string());
  const Config d = defaults();
  for (const auto& k : quopt_schema().keys()) {
    const bool own = k.rfind("optimizer.", 0) == 0 && k != "optimizer.lr" &&
                     (k.rfind("optimizer.adamw.", 0) == 0 || k.find('.', 10) == std::string::npos);
    if (own) {
      EXPECT_EQ(c.source(k), f.string()) << k;
      EXPECT_TRUE(c.get(k) == d.get(k)) << k;
    } else {
      EXPECT_EQ(c.source(k), "default") << k;
    }
  }
}

TEST(ShippedConfigs, RunFilesLoad) {
  const fs::path root = repo_root();
  if (!fs::exists(root / "inputs" / "data" / "default.toml")) {
    GTEST_SKIP() << "inputs/data/default.toml is not there yet";
  }
  for (const std::string name : {"demo", "small"}) {
    SCOPED_TRACE(name);
    const fs::path f = root / "inputs" / "runs" / (name + ".toml");
    const Config c = Config::load(quopt_schema(), f.string());
    const quopt::RunConfig rc = quopt::make_run_config(c);
    EXPECT_EQ(rc.model.name, name == "demo" ? "olmo2-tiny" : "olmo2-small");
    EXPECT_EQ(rc.optimizer.name, "adamw");
    EXPECT_EQ(rc.train.batch_size, 16);
    EXPECT_EQ(rc.train.steps, 300);
    EXPECT_EQ(fs::path(rc.out_dir), (root / "runs" / name).lexically_normal());
    EXPECT_TRUE(fs::path(rc.data.train).is_absolute());
    // The stored form of this config loads back to the same values.
    EXPECT_TRUE(Config::from_toml_string(quopt_schema(), c.to_toml(), "stored").same_values(c));
  }
}

TEST(ShippedConfigs, DocsAreUpToDate) {
  const fs::path doc = repo_root() / "docs" / "config.md";
  const std::string generated = quopt::quopt_config_reference();
  if (const char* update = std::getenv("QUOPT_UPDATE_DOCS"); update && std::string(update) == "1") {
    std::ofstream(doc) << generated;
  }
  EXPECT_TRUE(read_text(doc) == generated)
      << doc << " is out of date with quopt_schema(); regenerate it with QUOPT_UPDATE_DOCS=1 test_run_config "
      << "--gtest_filter='*Docs*'";
  // Every key appears in it.
  for (const auto& k : quopt_schema().keys()) {
    EXPECT_NE(generated.find(quopt::cat('`', k.substr(k.rfind('.') + 1), '`')), std::string::npos) << k;
  }
}
