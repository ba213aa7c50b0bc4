#include "io/calibration.hpp"

#include "io/batch_loader.hpp"

namespace quopt {

void load_calibration_batch(const TokenShard& train, std::int64_t seq_len, std::uint64_t train_seed,
                            std::int64_t index, std::int64_t rows, Tensor& tokens, Tensor& targets) {
  BatchLoader loader(train, seq_len, train_seed + kCalibrationSeedOffset, BatchOrder::Shuffled);
  loader.load(index, rows, 0, rows, tokens, targets);
}

}  // namespace quopt
