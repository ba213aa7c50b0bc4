#pragma once
// Reading back DIR/metrics.jsonl (io/metrics_log.hpp writes it): the validation curve, what `quopt
// study` compares runs by. The study reads it from this text file rather than from run.h5 because its
// PTQ stage runs for several runs at once (Slurm array elements, parallel workers) and each writes its
// own run.h5: an HDF5 file must not be opened while another process writes it, while metrics.jsonl is
// complete and no longer written once run.h5 exists (the trainer writes run.h5 last).
#include <cstdint>
#include <string>
#include <vector>

namespace quopt {

struct ValCurve {
  std::vector<std::int64_t> step;  // ascending
  std::vector<double> loss;        // NaN where the log has null (a non-finite loss)
};

// The (step, val_loss) of every line that has a val_loss, in file order. Throws quopt::Error naming
// the file and the line for a line without a step, a malformed number, or steps out of order.
ValCurve read_val_curve(const std::string& jsonl_path);

}  // namespace quopt
