#include "analysis/model_analysis.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "analysis/outliers.hpp"
#include "core/error.hpp"
#include "kernels/ops.hpp"

namespace quopt {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Resets a model's linear observer when the analysis ends (also on an exception).
class ObserverGuard {
 public:
  explicit ObserverGuard(Olmo2& m) : m_(m) {}
  ~ObserverGuard() { m_.set_linear_observer(nullptr); }
  ObserverGuard(const ObserverGuard&) = delete;
  ObserverGuard& operator=(const ObserverGuard&) = delete;

 private:
  Olmo2& m_;
};

void check_same_architecture(const ModelConfig& a, const ModelConfig& b) {
  const bool same = a.d_model == b.d_model && a.n_layers == b.n_layers && a.n_heads == b.n_heads &&
                    a.n_kv_heads == b.n_kv_heads && a.mlp == b.mlp && a.mlp_hidden() == b.mlp_hidden() &&
                    a.tie_embeddings == b.tie_embeddings && a.qk_norm == b.qk_norm &&
                    a.vocab_size == b.vocab_size && a.rope_theta == b.rope_theta && a.norm_eps == b.norm_eps;
  QUOPT_CHECK(same, "analysis: the quantized model's architecture differs from the full-precision model's (",
              "d_model ", b.d_model, " vs ", a.d_model, ", n_layers ", b.n_layers, " vs ", a.n_layers,
              ", vocab ", b.vocab_size, " vs ", a.vocab_size,
              ", ...); build both from the same [model] config");
}

// Everything accumulated for one block linear.
struct LinearState {
  std::string layer, param;
  AbcSums sums;
  RelErrSums rin;
  ActivationStats act;
  Tensor h, hq;  // this chunk's inputs, recorded by the observers
};

// Element-wise sum over ranks, in place.
void allreduce_sum(std::vector<double>& v, MPI_Comm comm, int size) {
  if (size > 1 && !v.empty())
    MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_SUM, comm);
}

double finite_mean(const std::vector<double>& v) {
  double s = 0.0;
  std::int64_t n = 0;
  for (double x : v)
    if (std::isfinite(x)) {
      s += x;
      ++n;
    }
  return n > 0 ? s / static_cast<double>(n) : kNaN;
}

double finite_max(const std::vector<double>& v) {
  double m = kNaN;
  for (double x : v)
    if (std::isfinite(x) && !(x <= m)) m = x;
  return m;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> analysis_linear_layers(const ModelConfig& cfg) {
  std::vector<std::pair<std::string, std::string>> out;
  for (std::int64_t i = 0; i < cfg.n_layers; ++i) {
    const std::string b = block_name(i);
    for (const char* p : {"attn_q", "attn_k", "attn_v", "attn_o", "mlp_up"}) out.emplace_back(b, p);
    if (cfg.mlp == MlpKind::SwiGLU) out.emplace_back(b, "mlp_gate");
    out.emplace_back(b, "mlp_down");
  }
  return out;
}

AnalysisResult analyze_model(Olmo2& fp, Olmo2& q, const Tensor& tokens, const AnalysisOptions& opt,
                             MPI_Comm comm) {
  QUOPT_CHECK(&fp != &q,
              "analysis: the full-precision and the quantized model must be two objects (copy the "
              "model before quantizing it)");
  const ModelConfig& cfg = fp.config();
  check_same_architecture(cfg, q.config());
  QUOPT_CHECK(tokens.defined() && tokens.dtype() == DType::I32 && tokens.ndim() == 2 && tokens.is_host(),
              "analysis: the calibration tokens must be a host i32 tensor [sequences, seq], got ",
              tokens.defined() ? tokens.describe() : std::string("undefined"));
  const std::int64_t B = tokens.dim(0), T = tokens.dim(1);
  QUOPT_CHECK(B >= 1 && T >= 1, "analysis: the calibration batch ", tokens.describe(), " is empty");
  QUOPT_CHECK(T <= cfg.seq_len, "analysis: calibration sequences of ", T,
              " tokens exceed model.seq_len = ", cfg.seq_len);
  QUOPT_CHECK(opt.chunk_sequences >= 1, "analysis: chunk_sequences = ", opt.chunk_sequences,
              " must be at least 1");
  int rank = 0, size = 1, mpi_on = 0;
  MPI_Initialized(&mpi_on);
  if (mpi_on) {
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
  }

  // ---- the linear layers, in the order the forward observes them ------------------------------------------
  const auto linears = analysis_linear_layers(cfg);
  std::vector<LinearState> lin(linears.size());
  std::map<std::string, std::size_t> lin_index;
  for (std::size_t i = 0; i < linears.size(); ++i) {
    lin[i].layer = linears[i].first;
    lin[i].param = linears[i].second;
    const Tensor& w = fp.params().get(lin[i].layer + "/" + lin[i].param).value;
    lin[i].act.columns.sumsq.assign(static_cast<std::size_t>(w.dim(1)), 0.0);  // same size on every rank
    lin_index[lin[i].layer + "/" + lin[i].param] = i;
  }

  // The observers record the inputs of this module's linears during f(h) (fp) and fq(hq) (q) only.
  enum class Rec { None, Fp, Q } rec = Rec::None;
  ObserverGuard fp_guard(fp), q_guard(q);
  auto observer = [&](Rec who) {
    return [&, who](std::int64_t block, const std::string& param, const Tensor& x, const Tensor&) {
      if (rec != who) return;
      const auto it = lin_index.find(block_name(block) + "/" + param);
      QUOPT_CHECK(it != lin_index.end(), "analysis: unexpected linear layer ", block_name(block), "/", param);
      (who == Rec::Fp ? lin[it->second].h : lin[it->second].hq) = x.clone();
    };
  };
  fp.set_linear_observer(observer(Rec::Fp));
  q.set_linear_observer(observer(Rec::Q));

  const LinearQuant* lq = q.linear_quant();
  auto linear_abc = [&](LinearState& s) {
    QUOPT_CHECK(s.h.defined() && s.hq.defined(), "analysis: linear layer ", s.layer, "/", s.param,
                " was not seen by both models' forwards");
    const std::string name = s.layer + "/" + s.param;
    const Tensor& w = fp.params().get(name).value;
    const Tensor& wq = q.params().get(name).value;
    const bool quant = lq && lq->applies(s.param);
    auto f = [&](const Tensor& x) {
      Tensor y = Tensor::empty({x.dim(0), w.dim(0)}, x.dtype(), x.device());
      kernels::matmul(x, false, w, true, y);
      return y;
    };
    auto fq = [&](const Tensor& x) {
      Tensor y = Tensor::empty({x.dim(0), wq.dim(0)}, x.dtype(), x.device());
      if (quant) {
        LinearCache cache;
        lq->forward(x, wq, y, cache);
      } else {
        kernels::matmul(x, false, wq, true, y);
      }
      return y;
    };
    abc_accumulate(fq(s.hq), fq(s.h), f(s.hq), f(s.h), s.sums);
    relerr_accumulate(s.hq, s.h, s.rin);
    s.act.add(s.h);
    s.h = Tensor();
    s.hq = Tensor();
  };

  // ---- the chain, chunk by chunk; chunk c runs on rank c % size -------------------------------------------
  const std::int64_t M = fp.module_count();
  std::vector<AbcSums> msums(static_cast<std::size_t>(M));
  const std::int64_t n_chunks = (B + opt.chunk_sequences - 1) / opt.chunk_sequences;
  for (std::int64_t c = rank; c < n_chunks; c += size) {
    const std::int64_t b0 = c * opt.chunk_sequences, b1 = std::min(B, b0 + opt.chunk_sequences), Bc = b1 - b0;
    std::vector<AbcModule> chain;
    for (std::int64_t m = 0; m < M; ++m)
      chain.push_back({fp.module_name(m),
                       [&fp, m, Bc, T](const Tensor& x) { return fp.module_forward(m, x, Bc, T); },
                       [&q, m, Bc, T](const Tensor& x) { return q.module_forward(m, x, Bc, T); },
                       [&fp, m](const Tensor& out) { return fp.module_value(m, out); }});
    AbcHooks hooks;
    hooks.before_eval = [&](std::int64_t, AbcEval which) {
      rec = which == AbcEval::F_h ? Rec::Fp : (which == AbcEval::Fq_hq ? Rec::Q : Rec::None);
    };
    hooks.after_module = [&](std::int64_t) {
      rec = Rec::None;
      for (auto& s : lin)
        if (s.h.defined() || s.hq.defined()) linear_abc(s);
    };
    abc_chain_accumulate(chain, tokens.slice(b0, b1), msums, hooks);
  }

  // ---- per-weight work (outlier metrics, spectral ratios), task i on rank i % size ------------------------
  // Task i < lin.size() is linear i; the last task is the head.
  const std::size_t n_tasks = lin.size() + 1;
  std::vector<double> wres(n_tasks * 4, 0.0);  // weight_mmr, weight_mmr_skipped, weight_kurtosis, G1
  if (!opt.weight_metrics)                     // not measured: NaN metrics, no skipped rows
    for (std::size_t i = 0; i < wres.size(); ++i) wres[i] = i % 4 == 1 ? 0.0 : kNaN;
  for (std::size_t i = static_cast<std::size_t>(rank); opt.weight_metrics && i < n_tasks;
       i += static_cast<std::size_t>(size)) {
    if (i < lin.size()) {
      const std::string name = lin[i].layer + "/" + lin[i].param;
      const Tensor& w = fp.params().get(name).value;
      RowRatioStats mmr;
      accumulate_mmr(w, MmrDenominator::Median, mmr);
      wres[4 * i + 0] = mmr.value();
      wres[4 * i + 1] = static_cast<double>(mmr.skipped);
      wres[4 * i + 2] = kurtosis(w);
      wres[4 * i + 3] = spectral_ratio(w, q.params().get(name).value);
    } else {
      const std::string head = cfg.tie_embeddings ? "embed/weight" : "head/weight";
      wres[4 * i + 3] = spectral_ratio(fp.params().get(head).value, q.params().get(head).value);
    }
  }

  // ---- combine the ranks ----------------------------------------------------------------------------------
  // Sums: module ABC sums (5 and the input's 2 each), then per linear ABC sums (5), R_in sums (2), MMR
  // stats (2 x 3), column sums of squares (in_features) and their row count.
  std::vector<double> sums;
  for (const auto& s : msums)
    sums.insert(sums.end(), {s.h2, s.dh2, s.a2, s.b2, s.ab, s.input.diff2, s.input.ref2});
  for (const auto& s : lin) {
    sums.insert(sums.end(),
                {s.sums.h2, s.sums.dh2, s.sums.a2, s.sums.b2, s.sums.ab, s.rin.diff2, s.rin.ref2});
    for (const RowRatioStats* r : {&s.act.mmr_median, &s.act.mmr_mean})
      sums.insert(sums.end(), {r->sum, static_cast<double>(r->rows), static_cast<double>(r->skipped)});
    sums.insert(sums.end(), s.act.columns.sumsq.begin(), s.act.columns.sumsq.end());
    sums.push_back(static_cast<double>(s.act.columns.rows));
  }
  sums.insert(sums.end(), wres.begin(), wres.end());
  allreduce_sum(sums, comm, size);
  std::size_t k = 0;
  auto next = [&] { return sums[k++]; };
  for (auto& s : msums) s = AbcSums{next(), next(), next(), next(), next(), RelErrSums{next(), next()}};
  for (auto& s : lin) {
    s.sums = AbcSums{next(), next(), next(), next(), next(), RelErrSums{}};
    s.rin.diff2 = next();
    s.rin.ref2 = next();
    for (RowRatioStats* r : {&s.act.mmr_median, &s.act.mmr_mean}) {
      r->sum = next();
      r->rows = static_cast<std::int64_t>(next());
      r->skipped = static_cast<std::int64_t>(next());
    }
    for (auto& v : s.act.columns.sumsq) v = next();
    s.act.columns.rows = static_cast<std::int64_t>(next());
  }
  for (auto& v : wres) v = next();
  // Moments do not add; every rank's are gathered and merged in rank order.
  if (size > 1) {
    std::vector<double> mine, all(lin.size() * 5 * static_cast<std::size_t>(size));
    for (const auto& s : lin) {
      const auto p = s.act.moments.pack();
      mine.insert(mine.end(), p.begin(), p.end());
    }
    MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE, all.data(),
                  static_cast<int>(mine.size()), MPI_DOUBLE, comm);
    for (std::size_t i = 0; i < lin.size(); ++i) {
      MomentStats m;
      for (int r = 0; r < size; ++r) {
        const double* p = all.data() + (static_cast<std::size_t>(r) * lin.size() + i) * 5;
        m.merge(MomentStats::unpack({p[0], p[1], p[2], p[3], p[4]}));
      }
      lin[i].act.moments = m;
    }
  }

  // ---- results --------------------------------------------------------------------------------------------
  AnalysisResult res;
  res.sequences = B;
  res.tokens = B * T;
  const auto terms = abc_chain_terms(msums);
  for (std::int64_t m = 0; m < M; ++m) {
    ModuleAnalysis ma;
    ma.name = fp.module_name(m);
    ma.linear = m == M - 1;  // the head
    ma.abc = terms[static_cast<std::size_t>(m)];
    ma.R_in = m == 0 ? kNaN : msums[static_cast<std::size_t>(m)].input.value();
    if (ma.linear) set_spectral_ratio(ma.abc, wres[4 * lin.size() + 3]);
    res.modules.push_back(ma);
  }
  res.R_L = res.modules.back().abc.R;
  std::vector<double> mmrs, mmrs_tomean, kurts;
  for (std::size_t i = 0; i < lin.size(); ++i) {
    const auto& s = lin[i];
    LinearLayerAnalysis la;
    la.layer = s.layer;
    la.param = s.param;
    la.quantized_arithmetic = lq && lq->applies(s.param);
    la.act_mmr = s.act.mmr_median.value();
    la.act_mmr_mean = s.act.mmr_mean.value();
    la.act_kurtosis = s.act.moments.kurtosis();
    la.act_rms_kurtosis = s.act.columns.rms_kurtosis();
    la.act_rows = s.act.columns.rows;
    la.act_mmr_skipped = s.act.mmr_median.skipped;
    la.weight_mmr = wres[4 * i + 0];
    la.weight_mmr_skipped = static_cast<std::int64_t>(wres[4 * i + 1]);
    la.weight_kurtosis = wres[4 * i + 2];
    la.R_in = s.rin.value();
    la.abc = abc_terms(s.sums, la.R_in);
    set_spectral_ratio(la.abc, wres[4 * i + 3]);
    mmrs.push_back(la.act_mmr);
    mmrs_tomean.push_back(la.act_mmr_mean);
    kurts.push_back(la.act_kurtosis);
    res.layers.push_back(std::move(la));
  }
  res.mmr_mean = finite_mean(mmrs);
  res.mmr_max = finite_max(mmrs);
  res.kurtosis_mean = finite_mean(kurts);
  res.kurtosis_max = finite_max(kurts);
  res.mmr_tomean_mean = finite_mean(mmrs_tomean);
  res.mmr_tomean_max = finite_max(mmrs_tomean);
  return res;
}

}  // namespace quopt
