// write_analysis: the /analysis/<scheme> layout of docs/run-file.md read back with H5File, and a
// rewrite of the same scheme replacing the old group completely.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "analysis/writer.hpp"
#include "core/error.hpp"

namespace quopt {
namespace {

namespace fs = std::filesystem;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A synthetic result: n_blocks blocks with two linears each, the chain embed, block.NN.attn/attn_norm/
// mlp/mlp_norm, final_norm, head. Values are distinct so that a mix-up shows.
AnalysisResult synthetic(int n_blocks, double base) {
  AnalysisResult r;
  r.sequences = 2;
  r.tokens = 16;
  auto terms = [&](double v, bool linear, bool first) {
    AbcTerms t;
    t.A = v;
    t.B = 2 * v;
    t.C = -0.5 * v;
    t.R = t.A + t.B + t.C;
    t.G = first ? kNaN : 3 * v;
    t.G1 = linear ? 1.25 : kNaN;
    t.G2 = linear ? t.G / t.G1 : kNaN;
    return t;
  };
  std::vector<std::string> names = {"embed"};
  for (int b = 0; b < n_blocks; ++b) {
    for (const char* m : {".attn", ".attn_norm", ".mlp", ".mlp_norm"}) names.push_back(cat("block.0", b, m));
  }
  names.push_back("final_norm");
  names.push_back("head");
  for (std::size_t i = 0; i < names.size(); ++i) {
    const bool head = i + 1 == names.size();
    r.modules.push_back({names[i], head, i == 0 ? kNaN : 0.25 + static_cast<double>(i),
                         terms(base + static_cast<double>(i), head, i == 0)});
  }
  for (int b = 0; b < n_blocks; ++b)
    for (const char* p : {"attn_q", "mlp_down"}) {
      LinearLayerAnalysis l;
      l.layer = cat("block.0", b);
      l.param = p;
      l.quantized_arithmetic = std::string(p) == "attn_q";
      l.act_mmr = base + 10 * b + 1;
      l.act_mmr_mean = base + 10 * b + 2;
      l.act_kurtosis = base + 10 * b + 3;
      l.act_rms_kurtosis = base + 10 * b + 4;
      l.act_mmr_skipped = b;
      l.weight_mmr = base + 10 * b + 5;
      l.weight_kurtosis = base + 10 * b + 6;
      l.R_in = 0.5;
      l.abc = terms(base + 10 * b + 7, true, false);
      r.layers.push_back(l);
    }
  r.R_L = r.modules.back().abc.R;
  r.mmr_mean = base + 100;
  r.mmr_max = base + 101;
  r.kurtosis_mean = base + 102;
  r.kurtosis_max = base + 103;
  r.mmr_tomean_mean = base + 104;
  r.mmr_tomean_max = base + 105;
  return r;
}

double scalar(const H5File& f, const std::string& path) {
  const Tensor t = f.read(path);
  EXPECT_EQ(t.shape(), Shape{}) << path;
  EXPECT_EQ(t.dtype(), DType::F64) << path;
  return t.item(0);
}

class AnalysisWriter : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / cat("quopt_analysis_writer_", ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file() const { return (dir_ / "run.h5").string(); }
  fs::path dir_;
};

void expect_layout(const H5File& f, const std::string& scheme, const AnalysisResult& r) {
  const std::string base = "analysis/" + scheme;
  EXPECT_EQ(f.get_attr_double(base, "R_L"), r.R_L);
  EXPECT_EQ(f.get_attr_double(base, "mmr_mean"), r.mmr_mean);
  EXPECT_EQ(f.get_attr_double(base, "mmr_max"), r.mmr_max);
  EXPECT_EQ(f.get_attr_double(base, "kurtosis_mean"), r.kurtosis_mean);
  EXPECT_EQ(f.get_attr_double(base, "kurtosis_max"), r.kurtosis_max);
  EXPECT_EQ(f.get_attr_double(base, "mmr_tomean_mean"), r.mmr_tomean_mean);
  EXPECT_EQ(f.get_attr_double(base, "mmr_tomean_max"), r.mmr_tomean_max);
  EXPECT_EQ(f.get_attr_int(base, "tokens"), r.tokens);
  EXPECT_EQ(f.list(base), (std::vector<std::string>{"abc", "layers"}));

  // abc/<NNN>_<module>: scalar f64 datasets, G1 and G2 for the head only.
  std::vector<std::string> expect_groups;
  for (std::size_t i = 0; i < r.modules.size(); ++i)
    expect_groups.push_back(abc_group_name(i, r.modules[i].name));
  EXPECT_EQ(f.list(base + "/abc"), expect_groups);  // zero-padded indices sort in chain order
  for (std::size_t i = 0; i < r.modules.size(); ++i) {
    const auto& m = r.modules[i];
    const std::string g = base + "/abc/" + expect_groups[i];
    EXPECT_EQ(scalar(f, g + "/R"), m.abc.R);
    EXPECT_EQ(scalar(f, g + "/A"), m.abc.A);
    EXPECT_EQ(scalar(f, g + "/B"), m.abc.B);
    EXPECT_EQ(scalar(f, g + "/C"), m.abc.C);
    if (i == 0) {
      EXPECT_TRUE(std::isnan(scalar(f, g + "/G")));
      EXPECT_TRUE(std::isnan(scalar(f, g + "/R_in")));
    } else {
      EXPECT_EQ(scalar(f, g + "/G"), m.abc.G);
      EXPECT_EQ(scalar(f, g + "/R_in"), m.R_in);
    }
    EXPECT_EQ(f.exists(g + "/G1"), m.linear);
    EXPECT_EQ(f.exists(g + "/G2"), m.linear);
    if (m.linear) {
      EXPECT_EQ(scalar(f, g + "/G1"), m.abc.G1);
      EXPECT_EQ(scalar(f, g + "/G2"), m.abc.G2);
    }
  }

  // layers/<layer>/<param>: attributes.
  for (const auto& l : r.layers) {
    const std::string g = base + "/layers/" + l.layer + "/" + l.param;
    ASSERT_TRUE(f.is_group(g)) << g;
    EXPECT_EQ(f.get_attr_double(g, "act_mmr"), l.act_mmr);
    EXPECT_EQ(f.get_attr_double(g, "act_mmr_mean"), l.act_mmr_mean);
    EXPECT_EQ(f.get_attr_double(g, "act_kurtosis"), l.act_kurtosis);
    EXPECT_EQ(f.get_attr_double(g, "act_rms_kurtosis"), l.act_rms_kurtosis);
    EXPECT_EQ(f.get_attr_int(g, "act_mmr_skipped"), l.act_mmr_skipped);
    EXPECT_EQ(f.get_attr_double(g, "weight_mmr"), l.weight_mmr);
    EXPECT_EQ(f.get_attr_double(g, "weight_kurtosis"), l.weight_kurtosis);
    EXPECT_EQ(f.get_attr_int(g, "quantized_arithmetic"), l.quantized_arithmetic ? 1 : 0);
    EXPECT_EQ(f.get_attr_double(g, "R_in"), l.R_in);
    for (auto [name, v] : {std::pair<const char*, double>{"R", l.abc.R},
                           {"A", l.abc.A},
                           {"B", l.abc.B},
                           {"C", l.abc.C},
                           {"G", l.abc.G},
                           {"G1", l.abc.G1},
                           {"G2", l.abc.G2}})
      EXPECT_EQ(f.get_attr_double(g, name), v) << g << " " << name;
  }
}

TEST_F(AnalysisWriter, LayoutReadsBackAndRewriteReplaces) {
  const AnalysisResult first = synthetic(2, 1.0), second = synthetic(1, 50.0), other = synthetic(1, 7.0);
  {
    H5File f = H5File::create(file(), MPI_COMM_WORLD);
    f.set_attr("", "quopt_version", "test");
    write_analysis(f, "rtn-w4a4", first);
    write_analysis(f, "gptq-w4", other);
    expect_layout(f, "rtn-w4a4", first);
  }
  {
    H5File f = H5File::open_rw(file(), MPI_COMM_WORLD);
    expect_layout(f, "rtn-w4a4", first);
    write_analysis(f, "rtn-w4a4", second);  // fewer blocks: the old block.01 and modules must go
  }
  H5File f = H5File::open_read(file(), MPI_COMM_WORLD);
  expect_layout(f, "rtn-w4a4", second);
  EXPECT_EQ(f.list("analysis/rtn-w4a4/layers"), (std::vector<std::string>{"block.00"}));
  EXPECT_FALSE(f.exists("analysis/rtn-w4a4/abc/009_block.01.mlp_norm"));
  EXPECT_EQ(f.list("analysis/rtn-w4a4/abc").size(), second.modules.size());
  expect_layout(f, "gptq-w4", other);  // the other scheme is untouched
  EXPECT_EQ(f.get_attr_string("", "quopt_version"), "test");
}

TEST_F(AnalysisWriter, RejectsBadSchemeNames) {
  H5File f = H5File::create(file(), MPI_COMM_WORLD);
  const AnalysisResult r = synthetic(1, 1.0);
  for (const char* bad : {"", "a/b", "..", "."}) {
    try {
      write_analysis(f, bad, r);
      ADD_FAILURE() << "accepted scheme '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("without '/'"), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(f.exists("analysis"));
  EXPECT_EQ(abc_group_name(7, "head"), "007_head");
  EXPECT_EQ(abc_group_name(123, "embed"), "123_embed");
}

}  // namespace
}  // namespace quopt
