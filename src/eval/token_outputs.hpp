#pragma once
// A model's outputs token by token on the first validation windows of a token shard, read as
// evaluate_validation reads them (sequential windows of seq_len + 1 tokens): what `quopt eval --logits`
// writes, for comparing quopt's numbers with another implementation's (e.g. transformers) on the same
// tokens, or for inspecting where a quantized model loses.
#include <cstdint>

#include "core/tensor.hpp"

namespace quopt {

class Olmo2;
class TokenShard;

struct TokenOutputs {
  Tensor tokens;   // i32 [W, T] model inputs
  Tensor targets;  // i32 [W, T] next tokens
  Tensor logits;   // f32 [W, T, V]
  Tensor loss;     // f32 [W, T] cross-entropy of each target in nats (no z-loss, as in validation)
};

// The first `windows` windows (at most the shard's), evaluated in batches of `batch_rows`.
TokenOutputs model_token_outputs(const Olmo2& model, const TokenShard& shard, std::int64_t windows,
                                 std::int64_t batch_rows);

}  // namespace quopt
