#pragma once
// The per-model analysis behind `quopt analyze` (docs/analysis.md): on a calibration batch,
//   * the ABC decomposition along the OLMo2 module chain (embed; per block attn, attn_norm, mlp,
//     mlp_norm; final_norm, head: Olmo2::module_forward), with G1/G2 for the (tied) head;
//   * the ABC decomposition of every block linear layer on its own: f(x) = x W^T, fq(x) = the quantized
//     model's arithmetic for that layer (its LinearQuant when it applies, else x Wq^T), on the inputs h
//     and hq the two models feed that layer;
//   * outlier metrics (analysis/outliers.hpp) of every block linear's full-precision input and weight;
//   * per-model aggregates (mean and max over the linear layers) and R_L.
// The batch is processed in chunks of sequences (all sums are additive over sequences, so the chunk
// size changes results only by rounding) and the chunks are spread over the ranks of a communicator.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "analysis/abc.hpp"
#include "core/tensor.hpp"
#include "model/olmo2.hpp"

namespace quopt {

struct AnalysisOptions {
  // Sequences per chunk. Every chunk runs each module four times and keeps its four outputs (the head's
  // are [chunk tokens, vocab]), so this bounds the memory; 1 keeps it smallest (quopt's choice: the
  // result does not depend on it beyond rounding).
  std::int64_t chunk_sequences = 1;
  // The per-weight metrics: weight MMR and kurtosis, and the spectral ratios G1, G2 of every linear and
  // the head (two Lanczos eigenvalue problems per weight, the costly part on wide layers). false leaves
  // them NaN (robustness tracking during training does without them).
  bool weight_metrics = true;
};

struct LinearLayerAnalysis {
  std::string layer;                  // "block.03"
  std::string param;                  // attn_q, attn_k, attn_v, attn_o, mlp_up, mlp_gate, mlp_down
  bool quantized_arithmetic = false;  // the quantized model's LinearQuant applies to this layer
  // Outlier metrics of the layer's full-precision input on the batch ([tokens, in_features]).
  double act_mmr = 0.0, act_mmr_mean = 0.0, act_kurtosis = 0.0, act_rms_kurtosis = 0.0;
  std::int64_t act_rows = 0;         // tokens seen
  std::int64_t act_mmr_skipped = 0;  // tokens whose median |x| was 0 (left out of act_mmr)
  // Outlier metrics of the full-precision weight [out, in] (rows = output features).
  double weight_mmr = 0.0, weight_kurtosis = 0.0;
  std::int64_t weight_mmr_skipped = 0;
  double R_in = 0.0;  // |hq - h|^2 / |h|^2 of the layer's input
  AbcTerms abc;       // G = A / R_in, G1 from the stored weights, G2 = G / G1
};

struct ModuleAnalysis {
  std::string name;     // Olmo2::module_name
  bool linear = false;  // the head: G1, G2 are set
  double R_in = 0.0;    // relative error of the module's whole input state (G = A / R_in); NaN for embed
  AbcTerms abc;
};

struct AnalysisResult {
  std::int64_t sequences = 0, tokens = 0;   // calibration batch
  std::vector<ModuleAnalysis> modules;      // in chain order
  std::vector<LinearLayerAnalysis> layers;  // block order; per block in forward order
  double R_L = 0.0;                         // R of the last module (the logits)
  // Mean and max over the linear layers (NaN entries left out) of act_mmr (mmr_*: the authors'
  // max-to-median), act_mmr_mean (mmr_tomean_*: max-to-mean, bounded by the feature count) and
  // act_kurtosis (docs/analysis.md says why two MMRs).
  double mmr_mean = 0.0, mmr_max = 0.0, kurtosis_mean = 0.0, kurtosis_max = 0.0;
  double mmr_tomean_mean = 0.0, mmr_tomean_max = 0.0;
};

// Analyses the quantized model q against the full-precision model fp (whole models, same config) on
// tokens i32 [sequences, seq]. q carries whatever quantization the caller applied: quantized weights
// and/or a LinearQuant. Collective over comm: every rank passes the same models and tokens and gets
// the same result. The models' linear observers are used during the call and reset to none afterwards.
AnalysisResult analyze_model(Olmo2& fp, Olmo2& q, const Tensor& tokens, const AnalysisOptions& opt = {},
                             MPI_Comm comm = MPI_COMM_SELF);

// The block linear layers of a model in the order analyze_model reports them: (layer, param).
std::vector<std::pair<std::string, std::string>> analysis_linear_layers(const ModelConfig& cfg);

}  // namespace quopt
