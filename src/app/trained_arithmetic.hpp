#pragma once
// How a trained run's model computes: the QAT quantizer it was trained with, read from the resolved
// config stored in its run file (not from the config given on the command line, which may describe
// another run or none). A QuEST-trained model is evaluated, post-training quantized and analysed as it
// was trained, by every command (docs/quantization.md, "QAT runs after training").
#include <memory>
#include <string>

#include "io/run_config.hpp"
#include "model/linear.hpp"

namespace quopt::app {

struct TrainedArithmetic {
  QuantConfig quant;  // the run's own [quant] (qat, qat_head, bits, trust_factor, hadamard_block, layers)
  bool qat() const { return quant.qat != "none"; }
  // "exact", or the QAT quantizer, e.g. "quest-w4a4" and "quest-w4a4-head" with quant.qat_head.
  std::string name() const;
  // The LinearQuant the model runs with (make_qat; nullptr when exact).
  std::shared_ptr<const LinearQuant> linear_quant() const;
};

// Collective: reads the stored config of `run_file` (root attribute `config`). `given` is the config of
// the command line: a different QAT setting there is reported (log) and the run's own is used.
TrainedArithmetic read_trained_arithmetic(const std::string& run_file, const RunConfig& given);

// Throws quopt::Error naming `command` when the run is a QAT run: its model is already quantized, and a
// PTQ scheme on top would quantize it twice. Called before anything is written.
void reject_ptq_of_qat(const TrainedArithmetic& t, const std::string& run_file, const std::string& command);

}  // namespace quopt::app
