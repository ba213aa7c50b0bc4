#pragma once
// Writes an AnalysisResult into the run file under /analysis/<scheme>, the layout of docs/run-file.md
// ("Analysis"); the metrics are defined in docs/analysis.md.
#include <string>

#include "analysis/model_analysis.hpp"
#include "io/h5file.hpp"

namespace quopt {

// Collective over f's communicator: every rank calls it with the same scheme and result (metadata is
// collective); the scalar datasets are written by writer_rank. An existing /analysis/<scheme> group is
// removed first, so the group holds exactly this result. scheme: a non-empty name without '/'.
void write_analysis(H5File& f, const std::string& scheme, const AnalysisResult& r, int writer_rank = 0);

// "<NNN>_<module>" (three digits, zero-padded), the group name of module `index` under abc/.
std::string abc_group_name(std::size_t index, const std::string& module);

}  // namespace quopt
