#pragma once
// The calibration order of a run's training shard: the sequences PTQ (GPTQ), `quopt analyze` and the
// robustness tracking during training quantize and measure on. Shuffled windows with the training seed
// + 7919 (quopt choice), so calibration sequences differ from the first training batches.
#include <cstdint>

#include "core/tensor.hpp"
#include "io/token_shard.hpp"

namespace quopt {

inline constexpr std::uint64_t kCalibrationSeedOffset = 7919;

// Calibration batch `index` of `rows` sequences of `seq_len` tokens (i32 [rows, seq_len]) and their
// next-token targets.
void load_calibration_batch(const TokenShard& train, std::int64_t seq_len, std::uint64_t train_seed,
                            std::int64_t index, std::int64_t rows, Tensor& tokens, Tensor& targets);

}  // namespace quopt
