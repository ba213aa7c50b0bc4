#include "io/study.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "core/error.hpp"

namespace fs = std::filesystem;

namespace quopt {

namespace {

const char* const kOptimizers[] = {"adamw", "muon", "scion", "shampoo", "soap", "psgd"};

Schema build_study_schema() {
  Schema s;
  auto str = [&](const char* k, const char* def, const char* doc) {
    s.add(KeySpec{k, KeyType::String, ConfigValue{std::string(def)}, doc, std::nullopt, std::nullopt, {}});
  };
  auto path = [&](const char* k, const char* def, const char* doc) {
    s.add(KeySpec{k, KeyType::Path, ConfigValue{std::string(def)}, doc, std::nullopt, std::nullopt, {}});
  };
  auto list = [&](const char* k, std::vector<std::string> def, std::vector<std::string> choices,
                  const char* doc, KeyType t = KeyType::StringList) {
    s.add(KeySpec{k, t, ConfigValue{std::move(def)}, doc, std::nullopt, std::nullopt, std::move(choices)});
  };
  str("study.name", "study", "label of the study (reports, job names)");
  path("study.base", "", "the run config every run starts from (data, schedule, batch, ...)");
  path("study.out_dir", "runs/study", "runs go to <out_dir>/<run name>/; the report to <out_dir>/report/");
  list("study.sizes", {}, {}, "model files, one per size (inputs/models/*.toml)", KeyType::PathList);
  list("study.optimizers", {"adamw"}, {kOptimizers, kOptimizers + 6}, "optimizers to compare");
  path("study.optimizer_dir", "", "directory of the per-optimizer files <name>.toml (inputs/optimizers)");
  s.add(
      KeySpec{"study.tokens_per_param",
              KeyType::Float,
              ConfigValue{20.0},
              "training tokens per parameter: 20 as in the paper (Chinchilla, Hoffmann et al. 2022); 0 keeps "
              "the base config's train.steps",
              0.0,
              std::nullopt,
              {}});
  s.add(KeySpec{"study.qat",
                KeyType::Bool,
                ConfigValue{false},
                "also train every (size, optimizer, lr) with QuEST W4A4 QAT (the paper's QAT study)",
                std::nullopt,
                std::nullopt,
                {}});
  list("study.ptq_schemes", {"rtn-w4a4"}, {},
       "PTQ schemes applied to every full-precision run; the paper's setting is rtn-w4a4 (arXiv 2509.23500)");
  list("study.overrides", {}, {}, "key=value overrides applied to every run (like --set)");
  list(
      "study.seeds", {}, {},
      "train.seed of each run (strings parsed as integers, e.g. [\"1\", \"2\"]); every (size, optimizer, lr) "
      "is trained once per seed and the best lr is chosen by the mean final validation loss over seeds; "
      "empty: one run with the base config's seed");
  s.add(KeySpec{
      "study.ptq_protocol",
      KeyType::String,
      ConfigValue{std::string("common-loss")},
      "where the selected models are quantized: common-loss (the paper, arXiv 2509.23500: per size, at "
      "the first validation point where the loss reaches the lowest loss every optimizer reaches; "
      "turns on snapshot.enabled) or final (the final weights)",
      std::nullopt,
      std::nullopt,
      {"common-loss", "final"}});
  for (const char* o : kOptimizers)
    list((std::string("study.lr.") + o).c_str(), {}, {},
         "learning rates for this optimizer (strings parsed as numbers); empty: the optimizer file's lr");
  list(
      "study.lr_scale", {}, {},
      "one factor per entry of sizes (strings parsed as numbers): size i trains at every grid lr times "
      "factor i, so one grid per optimizer can follow the smaller lrs larger models prefer (the paper sweeps "
      "per size and optimizer); empty: 1 for every size");
  return s;
}

std::string lr_tag(double lr) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "lr%.3g", lr);  // 3 significant digits: distinct names for a grid
  return buf;
}

std::int64_t parse_seed(const std::string& v) {
  std::size_t used = 0;
  long long x = -1;
  try {
    x = std::stoll(v, &used);
  } catch (...) {
    used = 0;
  }
  QUOPT_CHECK(used == v.size() && x >= 0, "study.seeds entry '", v,
              "' is not a non-negative integer (e.g. \"1\")");
  return x;
}

double parse_lr(const std::string& key, const std::string& v) {
  std::size_t used = 0;
  double x = 0;
  try {
    x = std::stod(v, &used);
  } catch (...) {
    used = 0;
  }
  QUOPT_CHECK(used == v.size() && x > 0, key, " entry '", v, "' is not a positive number (e.g. \"3e-3\")");
  return x;
}

std::string stem(const std::string& p) {
  return fs::path(p).stem().string();
}

}  // namespace

const Schema& study_schema() {
  static const Schema s = build_study_schema();
  return s;
}

StudyPlan make_study_plan(const std::string& path) {
  const Config c = Config::load(study_schema(), path);
  StudyPlan p;
  p.name = c.get_string("study.name");
  p.base = c.get_string("study.base");
  p.out_dir = c.get_string("study.out_dir");
  p.report_dir = p.out_dir + "/report";
  p.ptq_schemes = c.get_list("study.ptq_schemes");
  QUOPT_CHECK(!p.base.empty() && fs::exists(p.base), path, ": study.base = '", p.base,
              "' does not name an existing run config");
  const auto& sizes = c.get_list("study.sizes");
  QUOPT_CHECK(!sizes.empty(), path,
              ": study.sizes is empty; list model files such as inputs/models/olmo2-tiny.toml");
  std::string odir = c.get_string("study.optimizer_dir");
  if (odir.empty()) odir = (fs::absolute(path).parent_path() / "../optimizers").lexically_normal().string();
  const double tpp = c.get_float("study.tokens_per_param");
  const bool qat = c.get_bool("study.qat");
  p.protocol = c.get_string("study.ptq_protocol") == "final" ? PtqProtocol::Final : PtqProtocol::CommonLoss;
  std::vector<std::int64_t> seeds;
  for (const auto& v : c.get_list("study.seeds")) {
    seeds.push_back(parse_seed(v));
    QUOPT_CHECK(std::count(seeds.begin(), seeds.end(), seeds.back()) == 1, path, ": study.seeds lists ", v,
                " twice");
  }
  const bool many_seeds = seeds.size() > 1, set_seed = !seeds.empty();
  if (seeds.empty()) seeds.push_back(0);  // placeholder: the base config's train.seed
  std::vector<double> scale(sizes.size(), 1.0);
  if (const auto& f = c.get_list("study.lr_scale"); !f.empty()) {
    QUOPT_CHECK(f.size() == sizes.size(), path, ": study.lr_scale has ", f.size(),
                " factors but study.sizes has ", sizes.size(),
                " entries; give one factor per size (or none)");
    for (std::size_t i = 0; i < f.size(); ++i) scale[i] = parse_lr("study.lr_scale", f[i]);
  }
  std::int64_t index = 0;
  for (std::size_t si = 0; si < sizes.size(); ++si) {
    const std::string& size = sizes[si];
    QUOPT_CHECK(fs::exists(size), path, ": study.sizes entry '", size, "' does not exist");
    for (const auto& opt : c.get_list("study.optimizers")) {
      const std::string ofile = odir + "/" + opt + ".toml";
      QUOPT_CHECK(fs::exists(ofile), path, ": no optimizer file ", ofile, " for '", opt,
                  "'; set study.optimizer_dir to the directory of <optimizer>.toml files");
      std::vector<double> lrs;
      for (const auto& v : c.get_list("study.lr." + opt))
        lrs.push_back(parse_lr("study.lr." + opt, v) * scale[si]);
      if (lrs.empty()) lrs.push_back(0.0);  // the optimizer file's lr
      for (double lr : lrs)
        for (std::int64_t seed : seeds)
          for (int q = 0; q <= (qat ? 1 : 0); ++q) {
            StudyRun r;
            r.index = index++;
            r.optimizer = opt;
            r.optimizer_file = ofile;
            r.model_file = size;
            r.lr = lr;
            r.seed = seed;
            r.qat = q == 1;
            r.name = stem(size);
            r.name.append("_").append(opt);
            if (lr > 0) r.name.append("_").append(lr_tag(lr));
            if (many_seeds) r.name.append("_s").append(std::to_string(seed));
            if (r.qat) r.name.append("_qat");
            for (const auto& other : p.runs)
              QUOPT_CHECK(other.name != r.name, path, ": two runs are both named ", r.name,
                          " (a learning rate listed twice, or two that agree to 3 significant digits)");
            r.dir = (fs::path(p.out_dir) / r.name).string();
            r.overrides.push_back("optimizer.name=" + opt);
            if (lr > 0) {
              char buf[40];
              std::snprintf(buf, sizeof buf, "optimizer.lr=%.17g", lr);
              r.overrides.push_back(buf);
            }
            if (tpp > 0) {
              char buf[48];
              std::snprintf(buf, sizeof buf, "train.tokens_per_param=%.17g", tpp);
              r.overrides.push_back("train.steps=0");
              r.overrides.push_back(buf);
            }
            if (set_seed) r.overrides.push_back("train.seed=" + std::to_string(seed));
            if (r.qat) r.overrides.push_back("quant.qat=quest");
            // Snapshots at validation points: the common-loss protocol quantizes a run at one of them.
            if (!r.qat && p.protocol == PtqProtocol::CommonLoss)
              r.overrides.push_back("snapshot.enabled=true");
            for (const auto& o : c.get_list("study.overrides")) r.overrides.push_back(o);
            r.overrides.push_back("output.dir=" + r.dir);
            p.runs.push_back(std::move(r));
          }
    }
  }
  return p;
}

std::string study_run_config_text(const StudyPlan& plan, const StudyRun& run) {
  std::string t = "# Generated by `quopt study` for study '" + plan.name + "', run " +
                  std::to_string(run.index) + ". Edit the study file instead.\n";
  t += "include = [\"" + plan.base + "\", \"" + run.model_file + "\", \"" + run.optimizer_file + "\"]\n";
  // Overrides as dotted keys at top level (TOML allows `a.b = v`); values quoted unless numeric/bool.
  for (const auto& o : run.overrides) {
    const auto eq = o.find('=');
    const std::string key = o.substr(0, eq), val = o.substr(eq + 1);
    bool bare = val == "true" || val == "false";
    if (!bare) {
      char* end = nullptr;
      std::strtod(val.c_str(), &end);
      bare = !val.empty() && end && *end == '\0';
    }
    t += key + " = " + (bare ? val : "\"" + val + "\"") + "\n";
  }
  return t;
}

std::vector<std::string> study_stages(const StudyRun&) {
  // A QAT run has the same three: its ptq stage evaluates it as trained, its analyze stage analyses its
  // QAT quantization (app/cmd_study.cpp).
  return {"train", "ptq", "analyze"};
}

}  // namespace quopt
