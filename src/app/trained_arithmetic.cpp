#include "app/trained_arithmetic.hpp"

#include <mpi.h>

#include <filesystem>
#include <set>

#include "core/error.hpp"
#include "core/log.hpp"
#include "io/config.hpp"
#include "io/h5file.hpp"
#include "quant/qat.hpp"

namespace quopt::app {

namespace {

bool same_qat(const QuantConfig& a, const QuantConfig& b) {
  if (a.qat != b.qat) return false;
  if (a.qat == "none") return true;
  return a.qat_head == b.qat_head && a.weight_bits == b.weight_bits && a.act_bits == b.act_bits &&
         a.trust_factor == b.trust_factor && a.hadamard_block == b.hadamard_block && a.layers == b.layers;
}

}  // namespace

std::string TrainedArithmetic::name() const {
  if (!qat()) return "exact";
  return cat(quant.qat, "-w", quant.weight_bits, "a", quant.act_bits, quant.qat_head ? "-head" : "");
}

std::shared_ptr<const LinearQuant> TrainedArithmetic::linear_quant() const {
  return make_qat(quant);
}

TrainedArithmetic read_trained_arithmetic(const std::string& run_file, const RunConfig& given) {
  QUOPT_CHECK(std::filesystem::exists(run_file), "no run file ", run_file,
              ": train first (quopt train ... --out DIR) or point --run at a run directory");
  std::string text;
  {
    H5File f = H5File::open_read(run_file, MPI_COMM_WORLD);
    QUOPT_CHECK(f.has_attr("/", "config"), run_file,
                " has no root attribute 'config' (the resolved config `quopt train` stores): it was not "
                "written by quopt train, so how its model computes is unknown");
    text = f.get_attr_string("/", "config");
  }
  TrainedArithmetic t;
  try {
    const Config stored = Config::from_toml_string(quopt_schema(), text, run_file + ":/config");
    t.quant = make_run_config(stored).quant;
  } catch (const Error& e) {
    fail("cannot read how ", run_file, " was trained from its stored config: ", e.what());
  }
  static std::set<std::string> warned;  // once per run file and process (a command loads a run repeatedly)
  if (!same_qat(t.quant, given.quant) && warned.insert(run_file).second) {
    const TrainedArithmetic g{given.quant};
    log_warn(run_file, " was trained with ", t.name(), " arithmetic (quant.qat = \"", t.quant.qat,
             "\" in its stored config) but the given config says ", g.name(), "; using the run's own ",
             t.name());
  }
  return t;
}

void reject_ptq_of_qat(const TrainedArithmetic& t, const std::string& run_file, const std::string& command) {
  if (!t.qat()) return;
  fail(command, ": ", run_file, " is a QAT run (trained with ", t.name(),
       "): its model is already quantized, and a post-training quantization scheme on top would quantize "
       "it twice. Evaluate it as trained with `quopt eval CONFIG --run DIR` (no --quant), and analyse its "
       "QAT quantization with `quopt analyze CONFIG --run DIR` (no --quant); nothing was written");
}

}  // namespace quopt::app
