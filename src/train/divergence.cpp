#include "train/divergence.hpp"

#include <cmath>

#include "core/error.hpp"
#include "core/log.hpp"

namespace quopt {

DivergenceGuard::DivergenceGuard(const TrainConfig& train, const OptimizerConfig& opt)
    : max_skips_(train.max_nonfinite_skips), lr_(opt.lr), grad_clip_(train.grad_clip) {}

std::string DivergenceGuard::advice() const {
  const std::string clip = grad_clip_ > 0.0 ? cat("lower train.grad_clip (now ", grad_clip_, ")")
                                            : std::string("enable train.grad_clip (e.g. 1.0; it is 0, off)");
  return cat("lower optimizer.lr (now ", lr_, ") or ", clip,
             ", then continue from the newest checkpoint with --resume auto --allow-config-change "
             "optimizer.lr (every checkpoint written holds finite values)");
}

bool DivergenceGuard::admit(std::int64_t step, double loss, double grad_norm,
                            const std::string& weights_bad) {
  if (std::isfinite(loss) && std::isfinite(grad_norm)) return true;
  const std::string what = cat("at step ", step, " the training loss is ", loss, " and the gradient norm is ",
                               grad_norm, " (before the update, which was not applied)");
  if (!weights_bad.empty()) {
    fail(what, ": the weights are no longer finite (", weights_bad,
         "), so the previous step's optimizer update produced NaN or inf from a finite gradient. ", advice());
  }
  if (skipped_ >= max_skips_) {
    fail(what,
         max_skips_ > 0 ? cat("; ", skipped_,
                              " step(s) were skipped already (train.max_nonfinite_skips = ", max_skips_, ")")
                        : std::string(),
         ". The run diverged: ", advice(),
         max_skips_ == 0 ? ", or let quopt skip such steps with train.max_nonfinite_skips = N" : "");
  }
  ++skipped_;
  log_warn(what, ": skipped this step's update (", skipped_, " of at most ", max_skips_,
           " skips, train.max_nonfinite_skips)");
  return false;
}

}  // namespace quopt
