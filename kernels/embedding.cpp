// embedding_forward / embedding_backward: checks and routing to host or CUDA.
#include "kernels/host/embedding.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/embedding.hpp"
#endif

namespace quopt::kernels {

namespace {

// tokens i32 (any shape, N = numel), table/dtable [V, C] float, rows [..., C] with N * C elements.
void check_embedding(const char* op, const Tensor& tokens, const char* table_name, const Tensor& table,
                     const char* rows_name, const Tensor& rows) {
  detail::check_dtype(op, "tokens", tokens, DType::I32);
  detail::check_float(op, table_name, table);
  detail::check_ndim(op, table_name, table, 2);
  detail::check_like(op, table_name, table, rows_name, rows);
  detail::check_device(op, table_name, table, "tokens", tokens);
  const std::int64_t c = table.dim(1);
  QUOPT_CHECK(rows.ndim() >= 1 && rows.dim(-1) == c && rows.numel() == tokens.numel() * c, op, ": argument '",
              rows_name, "' is ", rows.describe(), "; expected ", tokens.numel(), " rows of ", c,
              " columns (one per token of ", tokens.describe(), ", width of ", table_name, " ",
              table.describe(), ")");
  detail::check_no_overlap(op, rows_name, rows, table_name, table);
}

// Host tokens only: device tokens are validated on the host before upload (the CUDA kernels turn an
// id that slips through into NaN rows, never into an out-of-bounds read).
void check_token_range(const char* op, const Tensor& tokens, std::int64_t vocab) {
  if (!tokens.is_host()) return;
  const std::int64_t bad = host::first_bad_token(tokens.data<std::int32_t>(), tokens.numel(), vocab);
  QUOPT_CHECK(bad < 0, op, ": token id ", (bad >= 0 ? tokens.item(bad) : 0.0), " at position ", bad, " of ",
              tokens.describe(), " is outside the vocabulary [0, ", vocab,
              "); the tokenizer and the model's vocab_size disagree");
}

}  // namespace

void embedding_forward(const Tensor& tokens, const Tensor& table, Tensor& out) {
  constexpr const char* op = "embedding_forward";
  check_embedding(op, tokens, "table", table, "out", out);
  check_token_range(op, tokens, table.dim(0));
  detail::run(
      op, table,
      [&](auto tag) {
        using T = decltype(tag);
        host::embedding_forward(tokens.data<std::int32_t>(), tokens.numel(), table.data<T>(), table.dim(1),
                                out.data<T>());
      },
      [&]([[maybe_unused]] auto tag) {
#ifdef QUOPT_HAVE_CUDA
        using T = decltype(tag);
        cuda::embedding_forward(tokens.data<std::int32_t>(), tokens.numel(), table.dim(0), table.data<T>(),
                                table.dim(1), out.data<T>());
#endif
      });
}

void embedding_backward(const Tensor& tokens, const Tensor& dout, Tensor& dtable) {
  constexpr const char* op = "embedding_backward";
  check_embedding(op, tokens, "dtable", dtable, "dout", dout);
  check_token_range(op, tokens, dtable.dim(0));
  detail::run(
      op, dtable,
      [&](auto tag) {
        using T = decltype(tag);
        host::embedding_backward(tokens.data<std::int32_t>(), tokens.numel(), dout.data<T>(), dtable.dim(1),
                                 dtable.data<T>());
      },
      [&]([[maybe_unused]] auto tag) {
#ifdef QUOPT_HAVE_CUDA
        using T = decltype(tag);
        cuda::embedding_backward(tokens.data<std::int32_t>(), tokens.numel(), dtable.dim(0), dout.data<T>(),
                                 dtable.dim(1), dtable.data<T>());
#endif
      });
}

}  // namespace quopt::kernels
