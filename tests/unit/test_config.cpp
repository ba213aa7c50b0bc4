// The configuration engine (io/config.hpp) on a small test schema: loading, includes, path resolution,
// --set parsing, error messages and the to_toml round trip.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/config.hpp"
#include "support/error_of.hpp"

namespace fs = std::filesystem;
using quopt::Config;
using quopt::ConfigValue;
using quopt::KeySpec;
using quopt::KeyType;
using quopt::Schema;
using quopt::testing::error_of;
using Strings = std::vector<std::string>;

namespace {

Schema make_schema() {
  Schema s;
  s.add({"train.steps", KeyType::Int, ConfigValue{std::int64_t{100}}, "steps", 0.0, std::nullopt, {}});
  s.add({"train.seed", KeyType::Int, ConfigValue{std::int64_t{1}}, "seed", 0.0, std::nullopt, {}});
  s.add({"train.lr", KeyType::Float, ConfigValue{1e-3}, "lr", 0.0, 1.0, {}});
  s.add({"train.verbose", KeyType::Bool, ConfigValue{false}, "verbose", std::nullopt, std::nullopt, {}});
  s.add({"model.name",
         KeyType::String,
         ConfigValue{std::string("tiny")},
         "name",
         std::nullopt,
         std::nullopt,
         {}});
  s.add({"model.mlp",
         KeyType::String,
         ConfigValue{std::string("relu2")},
         "mlp",
         std::nullopt,
         std::nullopt,
         {"relu2", "swiglu"}});
  s.add({"model.width", KeyType::Int, ConfigValue{std::int64_t{64}}, "width", 1.0, 4096.0, {}});
  s.add({"data.train",
         KeyType::Path,
         ConfigValue{std::string("")},
         "train shard",
         std::nullopt,
         std::nullopt,
         {}});
  s.add({"data.inputs", KeyType::PathList, ConfigValue{Strings{}}, "inputs", std::nullopt, std::nullopt, {}});
  s.add({"optimizer.roles",
         KeyType::StringList,
         ConfigValue{Strings{"hidden"}},
         "roles",
         std::nullopt,
         std::nullopt,
         {"hidden", "embedding", "gain"}});
  s.add({"optimizer.adamw.beta1", KeyType::Float, ConfigValue{0.9}, "beta1", 0.0, 1.0, {}});
  s.add({"optimizer.adamw.beta2", KeyType::Float, ConfigValue{0.95}, "beta2", 0.0, 1.0, {}});
  s.add({"optimizer.tags",
         KeyType::StringList,
         ConfigValue{Strings{}},
         "free-form",
         std::nullopt,
         std::nullopt,
         {}});
  return s;
}

const Schema& schema() {
  static const Schema s = make_schema();
  return s;
}

// A fresh directory per test under the system temp dir, removed at the end.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ =
        fs::temp_directory_path() / ("quopt_test_config_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& rel, const std::string& text) {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  std::string path(const std::string& rel) const { return (dir_ / rel).lexically_normal().string(); }

  fs::path dir_;
};

#define EXPECT_HAS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "in: " << (text)

}  // namespace

TEST(ConfigSchema, KeysSectionsAndTables) {
  const Schema& s = schema();
  const Strings keys = s.keys();
  ASSERT_EQ(keys.size(), 13u);
  EXPECT_EQ(keys.front(), "train.steps");
  EXPECT_EQ(keys[10], "optimizer.adamw.beta1");
  EXPECT_EQ(s.sections(), (Strings{"train", "model", "data", "optimizer", "optimizer.adamw"}));
  EXPECT_TRUE(s.is_table("optimizer"));
  EXPECT_TRUE(s.is_table("optimizer.adamw"));
  EXPECT_FALSE(s.is_table("train.steps"));
  ASSERT_NE(s.find("model.mlp"), nullptr);
  EXPECT_EQ(s.find("model.mlp")->choices.size(), 2u);
  EXPECT_EQ(s.find("model.mlpx"), nullptr);
}

TEST(ConfigSchema, RejectsInvalidSpecs) {
  Schema s = make_schema();
  auto spec = [](std::string key, KeyType t, ConfigValue v) {
    return KeySpec{std::move(key), t, std::move(v), "doc", std::nullopt, std::nullopt, {}};
  };
  EXPECT_HAS(error_of([&] { s.add(spec("train.steps", KeyType::Int, std::int64_t{1})); }), "duplicate");
  EXPECT_HAS(error_of([&] { s.add(spec("nosection", KeyType::Int, std::int64_t{1})); }), "invalid key");
  EXPECT_HAS(error_of([&] { s.add(spec("a b.c", KeyType::Int, std::int64_t{1})); }), "invalid key");
  EXPECT_HAS(error_of([&] { s.add(spec("train.x", KeyType::Int, std::string("1"))); }), "default");
  EXPECT_HAS(error_of([&] { s.add(spec("train.steps.sub", KeyType::Int, std::int64_t{1})); }), "table");
  EXPECT_HAS(error_of([&] { s.add(spec("optimizer.adamw", KeyType::Int, std::int64_t{1})); }), "table");
  KeySpec bad = spec("train.y", KeyType::Float, 2.0);
  bad.max = 1.0;
  EXPECT_HAS(error_of([&] { s.add(bad); }), "out of range");
  KeySpec float_from_int = spec("train.z", KeyType::Float, std::int64_t{3});  // ints are accepted as floats
  s.add(float_from_int);
  EXPECT_EQ(std::get<double>(s.find("train.z")->default_value), 3.0);
}

TEST(ConfigSchema, ExclusiveBounds) {
  Schema s;
  KeySpec lr{"opt.lr", KeyType::Float, ConfigValue{0.5}, "lr", 0.0, 1.0, {}};
  lr.min_exclusive = lr.max_exclusive = true;
  s.add(lr);
  Config c = Config::defaults(s);
  c.set("opt.lr", "1e-300");
  EXPECT_EQ(c.get_float("opt.lr"), 1e-300);
  EXPECT_HAS(error_of([&] { c.set("opt.lr", "0"); }), "allowed: (0, 1)");
  EXPECT_HAS(error_of([&] { c.set("opt.lr", "1"); }), "allowed: (0, 1)");
  EXPECT_EQ(c.get_float("opt.lr"), 1e-300);
  KeySpec bad{"opt.x", KeyType::Float, ConfigValue{0.0}, "x", 0.0, std::nullopt, {}};
  bad.min_exclusive = true;
  EXPECT_HAS(error_of([&] { s.add(bad); }), "> 0");
}

TEST(ConfigSchema, ClosestKey) {
  const Schema& s = schema();
  EXPECT_EQ(s.closest("train.stepz").value_or(""), "train.steps");
  EXPECT_EQ(s.closest("train.step").value_or(""), "train.steps");
  EXPECT_EQ(s.closest("model.widht").value_or(""), "model.width");
  EXPECT_EQ(s.closest("optimizer.adamw.beta3").value_or(""), "optimizer.adamw.beta1");
  EXPECT_EQ(s.closest("steps").value_or(""), "train.steps");      // missing section
  EXPECT_EQ(s.closest("model.seed").value_or(""), "train.seed");  // right name, wrong section
  EXPECT_EQ(s.closest("trian.verbose").value_or(""), "train.verbose");
  EXPECT_FALSE(s.closest("zzz.qqqqqq").has_value());
  EXPECT_FALSE(s.closest("train.steps").has_value());  // not misspelt
}

TEST_F(ConfigTest, DefaultsAndSources) {
  const Config c = Config::defaults(schema());
  EXPECT_EQ(c.get_int("train.steps"), 100);
  EXPECT_DOUBLE_EQ(c.get_float("train.lr"), 1e-3);
  EXPECT_FALSE(c.get_bool("train.verbose"));
  EXPECT_EQ(c.get_string("model.mlp"), "relu2");
  EXPECT_EQ(c.get_list("optimizer.roles"), Strings{"hidden"});
  EXPECT_EQ(c.get_string("data.train"), "");  // an empty path stays empty
  EXPECT_EQ(c.source("train.steps"), "default");
}

TEST_F(ConfigTest, LoadsTablesDottedKeysAndSources) {
  const std::string f = write("run.toml",
                              "train.seed = 7\n"
                              "train.steps = 5\ntrain.lr = 1      # an integer is accepted for a float key\n"
                              "train.verbose = true\n"
                              "[model]\nname = \"m\"\nmlp = \"swiglu\"\n"
                              "[optimizer]\nroles = [\"hidden\", \"gain\"]\n"
                              "[optimizer.adamw]\nbeta2 = 0.98\n");
  const Config c = Config::load(schema(), f);
  EXPECT_EQ(c.get_int("train.steps"), 5);
  EXPECT_EQ(c.get_int("train.seed"), 7);
  EXPECT_EQ(c.get_float("train.lr"), 1.0);
  EXPECT_TRUE(std::holds_alternative<double>(c.get("train.lr")));
  EXPECT_TRUE(c.get_bool("train.verbose"));
  EXPECT_EQ(c.get_string("model.name"), "m");
  EXPECT_EQ(c.get_string("model.mlp"), "swiglu");
  EXPECT_EQ(c.get_list("optimizer.roles"), (Strings{"hidden", "gain"}));
  EXPECT_EQ(c.get_float("optimizer.adamw.beta2"), 0.98);
  EXPECT_EQ(c.get_float("optimizer.adamw.beta1"), 0.9);
  EXPECT_EQ(c.source("train.steps"), f);
  EXPECT_EQ(c.source("optimizer.adamw.beta1"), "default");
}

TEST_F(ConfigTest, EmptySchemaTableIsAccepted) {
  const Config c = Config::load(schema(), write("a.toml", "[optimizer.adamw]\n[model]\n"));
  EXPECT_EQ(c.get_float("optimizer.adamw.beta1"), 0.9);
}

TEST_F(ConfigTest, UnknownKeyNamesFileAndClosestKey) {
  const std::string f = write("bad.toml", "[train]\nsteps = 3\nstepz = 5\n");
  const std::string msg = error_of([&] { Config::load(schema(), f); });
  EXPECT_HAS(msg, f);
  EXPECT_HAS(msg, ":3:");  // the line of the bad key
  EXPECT_HAS(msg, "unknown key 'train.stepz'");
  EXPECT_HAS(msg, "did you mean 'train.steps'?");

  // A misspelt table reports the key with the hint for the right table.
  const std::string msg2 =
      error_of([&] { Config::load(schema(), write("bad2.toml", "[trian]\nverbose = true\n")); });
  EXPECT_HAS(msg2, "unknown key 'trian.verbose'");
  EXPECT_HAS(msg2, "did you mean 'train.verbose'?");

  // Nothing close: the valid keys of the section are listed instead.
  const std::string msg3 =
      error_of([&] { Config::load(schema(), write("bad3.toml", "[model]\nqqqqqqqq = 1\n")); });
  EXPECT_HAS(msg3, "unknown key 'model.qqqqqqqq'");
  EXPECT_HAS(msg3, "name, mlp, width");

  const std::string msg4 = error_of([&] { Config::load(schema(), write("bad4.toml", "[zzzzz]\n")); });
  EXPECT_HAS(msg4, "unknown key 'zzzzz'");
  EXPECT_HAS(msg4, "valid tables");

  // A table used as a value.
  const std::string msg5 =
      error_of([&] { Config::load(schema(), write("bad5.toml", "[optimizer]\nadamw = 3\n")); });
  EXPECT_HAS(msg5, "'optimizer.adamw' is a table");
  EXPECT_HAS(msg5, "optimizer.adamw.beta1");
}

TEST_F(ConfigTest, WrongTypeNamesExpectedTypeAndValue) {
  const std::string f = write("t.toml", "[train]\nsteps = \"ten\"\n");
  const std::string msg = error_of([&] { Config::load(schema(), f); });
  EXPECT_HAS(msg, f);
  EXPECT_HAS(msg, "'train.steps'");
  EXPECT_HAS(msg, "expects an integer");
  EXPECT_HAS(msg, "\"ten\"");
  EXPECT_HAS(msg, "string");

  const std::string m2 = error_of([&] { Config::load(schema(), write("u.toml", "[train]\nsteps = 2.5\n")); });
  EXPECT_HAS(m2, "expects an integer");
  EXPECT_HAS(m2, "2.5");
  const std::string m3 =
      error_of([&] { Config::load(schema(), write("v.toml", "[optimizer]\nroles = [\"hidden\", 3]\n")); });
  EXPECT_HAS(m3, "'optimizer.roles'");
  EXPECT_HAS(m3, "list of strings");
  const std::string m4 = error_of([&] { Config::load(schema(), write("w.toml", "[train]\nverbose = 1\n")); });
  EXPECT_HAS(m4, "true or false");
  const std::string m5 = error_of([&] { Config::load(schema(), write("x.toml", "[train.steps]\na = 1\n")); });
  EXPECT_HAS(m5, "'train.steps' expects an integer");
  EXPECT_HAS(m5, "table");
}

TEST_F(ConfigTest, OutOfRangeAndChoices) {
  const std::string f = write("r.toml", "[train]\nlr = 1.5\n");
  const std::string msg = error_of([&] { Config::load(schema(), f); });
  EXPECT_HAS(msg, f);
  EXPECT_HAS(msg, "'train.lr'");
  EXPECT_HAS(msg, "out of range");
  EXPECT_HAS(msg, "[0, 1]");

  const std::string m2 = error_of([&] { Config::load(schema(), write("s.toml", "[train]\nsteps = -1\n")); });
  EXPECT_HAS(m2, ">= 0");
  const std::string m3 = error_of([&] { Config::load(schema(), write("t.toml", "[train]\nlr = inf\n")); });
  EXPECT_HAS(m3, "finite");

  const std::string m4 =
      error_of([&] { Config::load(schema(), write("c.toml", "[model]\nmlp = \"gelu\"\n")); });
  EXPECT_HAS(m4, "'model.mlp'");
  EXPECT_HAS(m4, "\"gelu\"");
  EXPECT_HAS(m4, "relu2, swiglu");
  const std::string m5 = error_of(
      [&] { Config::load(schema(), write("d.toml", "[optimizer]\nroles = [\"hidden\", \"bias\"]\n")); });
  EXPECT_HAS(m5, "'optimizer.roles'");
  EXPECT_HAS(m5, "\"bias\"");
  EXPECT_HAS(m5, "hidden, embedding, gain");
}

TEST_F(ConfigTest, SyntaxErrorAndMissingFiles) {
  const std::string f = write("syn.toml", "[train]\nsteps = = 3\n");
  const std::string msg = error_of([&] { Config::load(schema(), f); });
  EXPECT_HAS(msg, f);
  EXPECT_HAS(msg, "TOML syntax error");

  const std::string m2 = error_of([&] { Config::from_toml_string(schema(), "[train\n", "stored-config"); });
  EXPECT_HAS(m2, "stored-config");
  EXPECT_HAS(m2, "TOML syntax error");

  const std::string m3 = error_of([&] { Config::load(schema(), path("nope.toml")); });
  EXPECT_HAS(m3, "nope.toml");
  EXPECT_HAS(m3, "not found");

  const std::string inc = write("sub/main.toml", "include = [\"../missing.toml\"]\n");
  const std::string m4 = error_of([&] { Config::load(schema(), inc); });
  EXPECT_HAS(m4, inc);                   // who included it
  EXPECT_HAS(m4, path("missing.toml"));  // what was missing
  EXPECT_HAS(m4, "not found");

  const std::string m5 = error_of([&] { Config::load(schema(), write("i.toml", "include = 3\n")); });
  EXPECT_HAS(m5, "'include' expects a list");

  // A directory is not "not found": it is there, and is not a file.
  write("adir/config.toml", "");
  const std::string m6 = error_of([&] { Config::load(schema(), path("adir")); });
  EXPECT_HAS(m6, "is a directory");
  EXPECT_HAS(m6, "adir/config.toml");
  EXPECT_HAS(error_of([&] { Config::load(schema(), write("j.toml", "include = [\"adir\"]\n")); }),
             "is a directory");
}

TEST_F(ConfigTest, IntegersBeyond64BitsInAFileAreErrors) {
  // TOML 1.0: an integer that does not fit in 64 bits is an error (never a silently capped value).
  for (const char* v : {"99999999999999999999", "9223372036854775808", "-9223372036854775809",
                        "0x1ffffffffffffffff", "1_000_000_000_000_000_000_000"}) {
    const std::string m = error_of(
        [&] { Config::load(schema(), write("big.toml", quopt::cat("[train]\nsteps = ", v, "\n"))); });
    EXPECT_HAS(m, "big.toml:2");
    EXPECT_HAS(m, "'train.steps'");
    EXPECT_HAS(m, "64 bits");
  }
  // The largest 64-bit integer itself is fine.
  EXPECT_EQ(Config::load(schema(), write("max.toml", "[train]\nsteps = 9223372036854775807\n"))
                .get_int("train.steps"),
            INT64_MAX);
}

TEST_F(ConfigTest, IncludeOrderAndOverriding) {
  write("parts/a.toml", "include = [\"c.toml\"]\n[train]\nsteps = 1\nseed = 1\n[model]\nname = \"a\"\n");
  write("parts/b.toml", "[train]\nseed = 2\nlr = 0.2\n[model]\nname = \"b\"\n");
  write("parts/c.toml", "[train]\nsteps = 30\nverbose = true\n[model]\nwidth = 33\n");
  const std::string main = write(
      "runs/main.toml", "include = [\"../parts/a.toml\", \"../parts/b.toml\"]\n[model]\nname = \"main\"\n");
  const Config c = Config::load(schema(), main);
  EXPECT_EQ(c.get_int("train.steps"), 1);  // a overrides its include c
  EXPECT_EQ(c.get_int("train.seed"), 2);   // b (later include) overrides a
  EXPECT_EQ(c.get_float("train.lr"), 0.2);
  EXPECT_TRUE(c.get_bool("train.verbose"));  // from c, nested include
  EXPECT_EQ(c.get_int("model.width"), 33);
  EXPECT_EQ(c.get_string("model.name"), "main");  // the including file overrides its includes
  EXPECT_EQ(c.source("model.name"), main);
  EXPECT_EQ(fs::path(c.source("train.seed")), fs::path(path("parts/b.toml")));
  EXPECT_EQ(fs::path(c.source("model.width")), fs::path(path("parts/c.toml")));

  // The same file included twice (a diamond) is not a cycle.
  const std::string diamond =
      write("runs/diamond.toml", "include = [\"../parts/c.toml\", \"../parts/a.toml\"]\n");
  EXPECT_EQ(Config::load(schema(), diamond).get_int("model.width"), 33);
}

TEST_F(ConfigTest, IncludeCyclesAreDetected) {
  write("x.toml", "include = [\"y.toml\"]\n");
  write("y.toml", "include = [\"sub/../x.toml\"]\n");
  fs::create_directories(dir_ / "sub");
  const std::string msg = error_of([&] { Config::load(schema(), path("x.toml")); });
  EXPECT_HAS(msg, "include cycle");
  EXPECT_HAS(msg, "x.toml -> ");
  EXPECT_HAS(msg, "y.toml -> ");

  const std::string self = write("self.toml", "include = [\"self.toml\"]\n");
  EXPECT_HAS(error_of([&] { Config::load(schema(), self); }), "include cycle");
}

TEST_F(ConfigTest, PathsResolveAgainstTheSettingFile) {
  write("inc/data.toml", "[data]\ntrain = \"shards/train.bin\"\ninputs = [\"a.txt\", \"/abs/b.txt\"]\n");
  const std::string main = write("runs/run.toml", "include = [\"../inc/data.toml\"]\n");
  const Config c = Config::load(schema(), main);
  EXPECT_EQ(c.get_string("data.train"), path("inc/shards/train.bin"));
  EXPECT_EQ(c.get_list("data.inputs"), (Strings{path("inc/a.txt"), "/abs/b.txt"}));
  EXPECT_TRUE(fs::path(c.get_string("data.train")).is_absolute());

  const std::string over =
      write("runs/over.toml", "include = [\"../inc/data.toml\"]\n[data]\ntrain = \"../t.bin\"\n");
  EXPECT_EQ(Config::load(schema(), over).get_string("data.train"), path("t.bin"));

  // --set: relative to the current directory; empty stays empty.
  Config d = Config::load(schema(), main, {"data.train=rel/x.bin"});
  EXPECT_EQ(d.get_string("data.train"), (fs::current_path() / "rel/x.bin").lexically_normal().string());
  d.set("data.train", "");
  EXPECT_EQ(d.get_string("data.train"), "");
  d.set("data.inputs", "p.txt,/q.txt");
  EXPECT_EQ(d.get_list("data.inputs"), (Strings{(fs::current_path() / "p.txt").string(), "/q.txt"}));

  // from_toml_string resolves against base_dir.
  const Config e = Config::from_toml_string(schema(), "[data]\ntrain = \"z.bin\"\n", "text", dir_.string());
  EXPECT_EQ(e.get_string("data.train"), path("z.bin"));
}

TEST_F(ConfigTest, SetParsesEveryType) {
  Config c = Config::defaults(schema());
  c.set("train.steps", "42");
  EXPECT_EQ(c.get_int("train.steps"), 42);
  c.set("train.steps", " 1_000 ");
  EXPECT_EQ(c.get_int("train.steps"), 1000);
  c.set("train.lr", "1e-3");
  EXPECT_EQ(c.get_float("train.lr"), 1e-3);
  c.set("train.lr", "0.25");
  EXPECT_EQ(c.get_float("train.lr"), 0.25);
  c.set("train.lr", "1");  // integers are accepted
  EXPECT_EQ(c.get_float("train.lr"), 1.0);
  c.set("train.verbose", "true");
  EXPECT_TRUE(c.get_bool("train.verbose"));
  c.set("train.verbose", "False");
  EXPECT_FALSE(c.get_bool("train.verbose"));
  c.set("model.name", "raw name");
  EXPECT_EQ(c.get_string("model.name"), "raw name");
  c.set("model.name", "\"quoted \\\"q\\\" \\t\"");
  EXPECT_EQ(c.get_string("model.name"), "quoted \"q\" \t");
  c.set("model.name", "'literal \\n'");
  EXPECT_EQ(c.get_string("model.name"), "literal \\n");
  c.set("model.mlp", "swiglu");
  EXPECT_EQ(c.get_string("model.mlp"), "swiglu");
  c.set("optimizer.roles", "hidden, gain");
  EXPECT_EQ(c.get_list("optimizer.roles"), (Strings{"hidden", "gain"}));
  c.set("optimizer.roles", "[\"embedding\"]");
  EXPECT_EQ(c.get_list("optimizer.roles"), Strings{"embedding"});
  c.set("optimizer.roles", "");
  EXPECT_TRUE(c.get_list("optimizer.roles").empty());
  c.set("optimizer.tags", "\"a,b\", c");
  EXPECT_EQ(c.get_list("optimizer.tags"), (Strings{"a,b", "c"}));
  EXPECT_EQ(c.source("optimizer.tags"), "--set");

  const Config d = Config::load(schema(), write("a.toml", "[train]\nsteps = 3\n"),
                                {"train.steps=4", "model.width = 128", "train.steps=5"});
  EXPECT_EQ(d.get_int("train.steps"), 5);  // overrides apply in order, after the files
  EXPECT_EQ(d.get_int("model.width"), 128);
  EXPECT_EQ(d.source("train.steps"), "--set");
}

TEST_F(ConfigTest, SetErrors) {
  Config c = Config::defaults(schema());
  EXPECT_HAS(error_of([&] { c.set("train.steps", "4.5"); }), "'train.steps' expects an integer, got '4.5'");
  EXPECT_HAS(error_of([&] { c.set("train.steps", "99999999999999999999"); }), "64 bits");
  EXPECT_HAS(error_of([&] { c.set("train.steps", ""); }), "expects an integer");
  EXPECT_HAS(error_of([&] { c.set("train.lr", "fast"); }), "'train.lr' expects a float, got 'fast'");
  EXPECT_HAS(error_of([&] { c.set("train.lr", "2"); }), "[0, 1]");
  EXPECT_HAS(error_of([&] { c.set("train.lr", "nan"); }), "finite");
  EXPECT_HAS(error_of([&] { c.set("train.verbose", "yes"); }), "true or false");
  EXPECT_HAS(error_of([&] { c.set("model.mlp", "gelu"); }), "relu2, swiglu");
  EXPECT_HAS(error_of([&] { c.set("optimizer.roles", "hidden,,gain"); }), "empty entry");
  EXPECT_HAS(error_of([&] { c.set("optimizer.roles", "[1, 2]"); }), "quoted strings");
  EXPECT_HAS(error_of([&] { c.set("optimizer.tags", "\"a, b"); }), "not closed");
  EXPECT_HAS(error_of([&] { c.set("optimizer.roles", "[\"hidden\""); }), "TOML array");
  EXPECT_HAS(error_of([&] { c.set("optimizer.roles", "hidden,bias"); }), "\"bias\"");

  const std::string m1 = error_of([&] { c.apply_override("train.steps"); });
  EXPECT_HAS(m1, "--set expects key=value, got 'train.steps'");
  EXPECT_HAS(error_of([&] { c.apply_override("=5"); }), "--set expects key=value, got '=5'");
  const std::string m2 = error_of([&] { c.apply_override("train.stepz=5"); });
  EXPECT_HAS(m2, "--set");
  EXPECT_HAS(m2, "unknown key 'train.stepz'; did you mean 'train.steps'?");
  EXPECT_HAS(error_of([&] { Config::load(schema(), write("a.toml", ""), {"model.widht=3"}); }),
             "did you mean 'model.width'?");

  // A rejected value changes nothing.
  c.set("train.steps", "7");
  EXPECT_THROW(c.set("train.steps", "-7"), quopt::Error);
  EXPECT_EQ(c.get_int("train.steps"), 7);
  EXPECT_EQ(c.source("train.steps"), "--set");
  EXPECT_THROW(c.set("optimizer.roles", "hidden,bias"), quopt::Error);
  EXPECT_EQ(c.get_list("optimizer.roles"), Strings{"hidden"});
}

TEST_F(ConfigTest, Getters) {
  const Config c = Config::defaults(schema());
  EXPECT_EQ(c.get_float("train.steps"), 100.0);  // ints read as floats
  EXPECT_HAS(error_of([&] { c.get_int("train.lr"); }), "'train.lr'");
  EXPECT_HAS(error_of([&] { c.get_string("train.steps"); }), "'train.steps'");
  EXPECT_HAS(error_of([&] { c.get_bool("model.nme"); }), "did you mean 'model.name'?");
  EXPECT_EQ(c.get_string("data.train"), "");
}

TEST(ConfigToml, FloatsAndStringsFormat) {
  EXPECT_EQ(quopt::config_value_to_toml(ConfigValue{500000.0}), "500000.0");
  EXPECT_EQ(quopt::config_value_to_toml(ConfigValue{0.1}), "0.1");
  EXPECT_EQ(quopt::config_value_to_toml(ConfigValue{-2.0}), "-2.0");
  EXPECT_EQ(quopt::config_value_to_toml(ConfigValue{1e-8}), "1e-8");
  EXPECT_EQ(quopt::config_value_to_toml(ConfigValue{2.5e20}), "2.5e20");
  const std::string tiny = quopt::config_value_to_toml(ConfigValue{1e-8});
  EXPECT_NE(tiny.find('e'), std::string::npos);
  EXPECT_EQ(std::stod(tiny), 1e-8);
  // Every double prints with a '.' or an exponent and parses back to itself.
  for (const double v : {0.0, -0.0, 1.0, 1e-4, 9.9999e-5, 123456.789, 1e15, 1e16, 1e20, 5e-324, 1.0 / 3.0,
                         -2.5e-7, std::numeric_limits<double>::max(), 0.30000000000000004}) {
    const std::string s = quopt::config_value_to_toml(ConfigValue{v});
    EXPECT_NE(s.find_first_of(".e"), std::string::npos) << s;
    EXPECT_EQ(std::strtod(s.c_str(), nullptr), v) << s;
    EXPECT_EQ(std::signbit(std::strtod(s.c_str(), nullptr)), std::signbit(v)) << s;
  }
  EXPECT_EQ(quopt::config_value_to_toml(ConfigValue{std::int64_t{-3}}), "-3");
  EXPECT_EQ(quopt::config_value_to_toml(ConfigValue{true}), "true");
  EXPECT_EQ(quopt::config_value_to_toml(ConfigValue{std::string("a\"b\\c\n")}), "\"a\\\"b\\\\c\\n\"");
  EXPECT_EQ(quopt::config_value_to_toml(ConfigValue{Strings{"x", "y"}}), "[\"x\", \"y\"]");
  EXPECT_EQ(quopt::config_value_to_toml(ConfigValue{Strings{}}), "[]");
}

TEST_F(ConfigTest, ToTomlRoundTripsEveryKey) {
  Config c = Config::defaults(schema());
  c.set("train.steps", "123456789012");
  c.set("train.lr", "0.1");
  c.set("train.verbose", "true");
  c.set("model.name", "\"quote \\\" backslash \\\\ newline \\n tab \\t bell \\u0007 utf8 \u00e9\"");
  c.set("model.width", "4096");
  c.set("data.train", "/tmp/some dir/x.bin");
  c.set("data.inputs", "[\"/a,b.txt\", \"/c.txt\"]");
  c.set("optimizer.roles", "");
  c.set("optimizer.adamw.beta1", "0.30000000000000004");
  c.set("optimizer.adamw.beta2", "1e-300");
  c.set("optimizer.tags", "[\"\", \"x y\"]");
  // Values that need all 17 significant digits.
  c.set("train.seed", "0");
  const double third = 1.0 / 3.0;
  c.set("train.lr", quopt::config_value_to_toml(ConfigValue{third}));
  ASSERT_EQ(c.get_float("train.lr"), third);

  const std::string text = c.to_toml();
  EXPECT_EQ(text.find("include"), std::string::npos);
  // Tables in schema order, each key once.
  EXPECT_LT(text.find("[train]"), text.find("[model]"));
  EXPECT_LT(text.find("[optimizer]"), text.find("[optimizer.adamw]"));
  for (const auto& k : schema().keys()) {
    const std::string last = k.substr(k.rfind('.') + 1);
    EXPECT_NE(text.find("\n" + last + " = "), std::string::npos) << k;
  }

  const Config back = Config::from_toml_string(schema(), text, "round-trip");
  EXPECT_TRUE(back.same_values(c));
  for (const auto& k : schema().keys()) EXPECT_TRUE(back.get(k) == c.get(k)) << k;
  EXPECT_EQ(back.get_float("train.lr"), third);
  EXPECT_EQ(back.source("train.lr"), "round-trip");

  // The same text as a file (what `quopt train` accepts) gives identical values, and to_toml is stable.
  const Config from_file = Config::load(schema(), write("resolved.toml", text));
  EXPECT_TRUE(from_file.same_values(c));
  EXPECT_EQ(from_file.to_toml(), text);

  // The defaults round-trip too (empty lists, empty paths).
  const Config def = Config::defaults(schema());
  EXPECT_TRUE(Config::from_toml_string(schema(), def.to_toml(), "d").same_values(def));
}

TEST(ConfigMarkdown, ListsEveryKey) {
  const std::string md = schema().markdown_reference();
  EXPECT_HAS(md, "### [optimizer.adamw]");
  EXPECT_HAS(md, "| `beta1` | float | `0.9` | [0, 1] | beta1 |");
  EXPECT_HAS(md, "| `mlp` | string | `\"relu2\"` | relu2, swiglu |");
}
