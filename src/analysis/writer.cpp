#include "analysis/writer.hpp"

#include <cstdio>

#include "core/error.hpp"

namespace quopt {

std::string abc_group_name(std::size_t index, const std::string& module) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%03zu_", index);
  return buf + module;
}

namespace {

// A scalar f64 dataset.
void write_scalar(H5File& f, const std::string& path, double v, int writer_rank) {
  Tensor t = Tensor::empty({}, DType::F64);
  *t.data<double>() = v;
  f.write_tensor(path, t, writer_rank);
}

void set_abc_attrs(H5File& f, const std::string& g, const AbcTerms& t) {
  f.set_attr(g, "R", t.R);
  f.set_attr(g, "A", t.A);
  f.set_attr(g, "B", t.B);
  f.set_attr(g, "C", t.C);
  f.set_attr(g, "G", t.G);
  f.set_attr(g, "G1", t.G1);
  f.set_attr(g, "G2", t.G2);
}

}  // namespace

void write_analysis(H5File& f, const std::string& scheme, const AnalysisResult& r, int writer_rank) {
  if (scheme.empty() || scheme.find('/') != std::string::npos || scheme == "." || scheme == "..")
    fail("analysis scheme name '", scheme, "' cannot name the group /analysis/<scheme> in '", f.path(),
         "': use a non-empty name without '/', e.g. the PTQ scheme (rtn-w4a4)");
  QUOPT_CHECK(writer_rank >= 0 && writer_rank < f.size(), "write_analysis: writer rank ", writer_rank,
              " is not a rank of the file's communicator (size ", f.size(), ")");
  const std::string base = "analysis/" + scheme;
  if (f.exists(base)) f.remove(base);
  f.create_group(base);
  f.set_attr(base, "R_L", r.R_L);
  f.set_attr(base, "mmr_mean", r.mmr_mean);
  f.set_attr(base, "mmr_max", r.mmr_max);
  f.set_attr(base, "kurtosis_mean", r.kurtosis_mean);
  f.set_attr(base, "kurtosis_max", r.kurtosis_max);
  f.set_attr(base, "mmr_tomean_mean", r.mmr_tomean_mean);
  f.set_attr(base, "mmr_tomean_max", r.mmr_tomean_max);
  f.set_attr(base, "sequences", r.sequences);
  f.set_attr(base, "tokens", r.tokens);

  for (const auto& l : r.layers) {
    const std::string g = base + "/layers/" + l.layer + "/" + l.param;
    f.create_group(g);
    f.set_attr(g, "act_mmr", l.act_mmr);
    f.set_attr(g, "act_mmr_mean", l.act_mmr_mean);
    f.set_attr(g, "act_kurtosis", l.act_kurtosis);
    f.set_attr(g, "act_rms_kurtosis", l.act_rms_kurtosis);
    f.set_attr(g, "act_mmr_skipped", l.act_mmr_skipped);
    f.set_attr(g, "weight_mmr", l.weight_mmr);
    f.set_attr(g, "weight_kurtosis", l.weight_kurtosis);
    f.set_attr(g, "weight_mmr_skipped", l.weight_mmr_skipped);
    f.set_attr(g, "quantized_arithmetic", static_cast<std::int64_t>(l.quantized_arithmetic));
    f.set_attr(g, "R_in", l.R_in);
    set_abc_attrs(f, g, l.abc);
  }

  f.create_group(base + "/abc");
  for (std::size_t m = 0; m < r.modules.size(); ++m) {
    const auto& mod = r.modules[m];
    const std::string g = base + "/abc/" + abc_group_name(m, mod.name);
    f.create_group(g);
    write_scalar(f, g + "/R", mod.abc.R, writer_rank);
    write_scalar(f, g + "/A", mod.abc.A, writer_rank);
    write_scalar(f, g + "/B", mod.abc.B, writer_rank);
    write_scalar(f, g + "/C", mod.abc.C, writer_rank);
    write_scalar(f, g + "/G", mod.abc.G, writer_rank);
    write_scalar(f, g + "/R_in", mod.R_in, writer_rank);
    if (mod.linear) {
      write_scalar(f, g + "/G1", mod.abc.G1, writer_rank);
      write_scalar(f, g + "/G2", mod.abc.G2, writer_rank);
    }
  }
}

}  // namespace quopt
