#include "io/study_select.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "core/error.hpp"

namespace quopt {

namespace {

double final_loss(const RunCurve& r) {
  const double v = r.val_loss.back();
  return std::isfinite(v) ? v : std::numeric_limits<double>::infinity();
}

// The validation before the first step (step 0) is the untrained model: never a point to quantize at.
std::size_t first_trained(const RunCurve& r) {
  return r.val_step.size() > 1 && r.val_step.front() == 0 ? 1 : 0;
}

double min_loss(const RunCurve& r) {
  double m = std::numeric_limits<double>::infinity();
  for (std::size_t i = first_trained(r); i < r.val_loss.size(); ++i)
    if (std::isfinite(r.val_loss[i])) m = std::min(m, r.val_loss[i]);
  return m;
}

}  // namespace

const char* ptq_protocol_name(PtqProtocol p) {
  return p == PtqProtocol::Final ? "final" : "common-loss";
}

std::int64_t first_crossing(const std::vector<double>& val_loss, double threshold) {
  for (std::size_t i = 0; i < val_loss.size(); ++i)
    if (val_loss[i] <= threshold) return static_cast<std::int64_t>(i);
  return -1;
}

std::vector<RunDecision> select_runs(const std::vector<RunCurve>& runs, PtqProtocol protocol) {
  for (const auto& r : runs)
    QUOPT_CHECK(!r.val_loss.empty() && r.val_loss.size() == r.val_step.size(), "run ", r.index, " has ",
                r.val_loss.size(), " validation losses and ", r.val_step.size(),
                " validation steps; a trained run has at least the final validation");
  using Group = std::tuple<std::string, std::string, bool>;  // size, optimizer, qat
  // Mean final loss over seeds per (group, lr).
  std::map<Group, std::map<double, std::pair<double, std::int64_t>>> sums;
  for (const auto& r : runs) {
    auto& s = sums[{r.size, r.optimizer, r.qat}][r.lr];
    s.first += final_loss(r);
    ++s.second;
  }
  std::map<Group, std::pair<double, double>> best;  // group -> (lr, mean loss)
  for (const auto& [g, by_lr] : sums) {
    auto& b = best[g];
    b = {0.0, std::numeric_limits<double>::infinity()};
    bool any = false;
    for (const auto& [lr, s] : by_lr) {  // ascending lr: a tie keeps the smaller one
      const double mean = s.first / static_cast<double>(s.second);
      if (!any || mean < b.second) b = {lr, mean};
      any = true;
    }
  }
  std::vector<RunDecision> out;
  for (const auto& r : runs) {
    const Group g{r.size, r.optimizer, r.qat};
    const auto& s = sums[g][r.lr];
    RunDecision d;
    d.index = r.index;
    d.lr_mean_loss = s.first / static_cast<double>(s.second);
    d.lr_seeds = s.second;
    d.best_lr = best[g].first;
    d.best_mean_loss = best[g].second;
    d.selected = r.lr == d.best_lr;
    out.push_back(d);
  }
  // Where each selected full-precision run is quantized.
  std::map<std::string, double> threshold;  // size -> max over its selected FP runs of their min loss
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (!out[i].selected || runs[i].qat) continue;
    auto it = threshold.find(runs[i].size);
    const double m = min_loss(runs[i]);
    if (it == threshold.end())
      threshold[runs[i].size] = m;
    else
      it->second = std::max(it->second, m);
  }
  for (std::size_t i = 0; i < runs.size(); ++i) {
    RunDecision& d = out[i];
    const RunCurve& r = runs[i];
    if (!d.selected) continue;
    std::int64_t at = static_cast<std::int64_t>(r.val_loss.size()) - 1;
    if (protocol == PtqProtocol::CommonLoss && !r.qat && std::isfinite(threshold[r.size])) {
      d.threshold = threshold[r.size];
      const std::size_t from = first_trained(r);
      const std::int64_t c = first_crossing(
          std::vector<double>(r.val_loss.begin() + static_cast<std::ptrdiff_t>(from), r.val_loss.end()),
          d.threshold);
      if (c >= 0) at = c + static_cast<std::int64_t>(from);
    }
    d.ptq_step = r.val_step[static_cast<std::size_t>(at)];
    d.ptq_val_loss = r.val_loss[static_cast<std::size_t>(at)];
  }
  return out;
}

}  // namespace quopt
