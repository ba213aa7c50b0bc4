#include "optim/blocking.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "kernels/optim_ops.hpp"

namespace quopt {

Shape merge_small_dims(const Shape& shape, std::int64_t threshold) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return {0};
  // Reversed, without dimensions of size 1 (the reference merges from the last dimension).
  Shape squeezed;
  for (auto it = shape.rbegin(); it != shape.rend(); ++it)
    if (*it != 1) squeezed.push_back(*it);
  if (squeezed.empty()) squeezed.push_back(1);
  constexpr std::size_t kTarget = 1;  // target_parameter_dimensionality = 1 (DistributedConfig default)
  Shape merged{squeezed[0]};
  for (std::size_t k = 1; k < squeezed.size(); ++k) {
    const std::size_t potential = merged.size() + (squeezed.size() - k);
    if (potential > kTarget && merged.back() * squeezed[k] <= threshold)
      merged.back() *= squeezed[k];
    else
      merged.push_back(squeezed[k]);
  }
  std::reverse(merged.begin(), merged.end());
  return merged;
}

std::vector<Block> make_blocks(const std::string& param_name, const Shape& shape, std::int64_t max_dim,
                               bool merge) {
  QUOPT_CHECK(max_dim >= 1, "make_blocks: max_preconditioner_dim = ", max_dim, " must be >= 1");
  const Shape view = merge ? merge_small_dims(shape, max_dim) : shape;
  QUOPT_CHECK(view.size() == 1 || view.size() == 2, "make_blocks: parameter ", param_name, " has shape ",
              shape_str(shape), " (", shape_str(view),
              " after merging); only 1-D and 2-D parameters can be blocked");
  std::vector<Block> blocks;
  const int order = static_cast<int>(view.size());
  const std::int64_t rows = order == 1 ? 1 : view[0];
  const std::int64_t cols = view.back();
  // Block boundaries along one dimension: full chunks of max_dim, a smaller last one (torch.split);
  // an empty dimension gives one empty chunk.
  auto chunks = [max_dim](std::int64_t n) {
    std::vector<std::int64_t> starts;
    for (std::int64_t s = 0; s < n; s += max_dim) starts.push_back(s);
    if (starts.empty()) starts.push_back(0);
    return starts;
  };
  const std::vector<std::int64_t> row_starts = order == 1 ? std::vector<std::int64_t>{0} : chunks(rows);
  const std::vector<std::int64_t> col_starts = chunks(cols);
  for (std::size_t bi = 0; bi < row_starts.size(); ++bi)
    for (std::size_t bj = 0; bj < col_starts.size(); ++bj) {
      Block b;
      b.order = order;
      b.row0 = row_starts[bi];
      b.col0 = col_starts[bj];
      b.rows = order == 1 ? 1 : std::min(max_dim, rows - b.row0);
      b.cols = std::min(max_dim, cols - b.col0);
      b.ld = cols;
      b.name = order == 1 ? cat(param_name, "#", bj) : cat(param_name, "#", bi, ",", bj);
      blocks.push_back(std::move(b));
    }
  return blocks;
}

namespace {
void check_block(const char* op, const Tensor& full, const Block& b, const Tensor& block) {
  QUOPT_CHECK(full.dtype() == DType::F32, op, ": parameter tensor must be f32, got ", full.describe());
  QUOPT_CHECK(block.dtype() == DType::F32 && block.numel() == b.numel() && block.device() == full.device(),
              op, ": block ", b.name, " needs ", b.numel(), " f32 elements on ", device_name(full.device()),
              ", got ", block.describe());
  QUOPT_CHECK((b.row0 + b.rows - 1) * b.ld + b.col0 + b.cols <= full.numel() || b.numel() == 0, op,
              ": block ", b.name, " lies outside ", full.describe());
}

// The merged view of full as a matrix [numel / ld, ld] and the block as [rows, cols].
Tensor view_of(const Tensor& full, const Block& b) {
  return full.reshape({full.numel() / b.ld, b.ld});
}
}  // namespace

void copy_block_out(const Tensor& full, const Block& b, Tensor& block) {
  check_block("copy_block_out", full, b, block);
  if (b.numel() == 0) return;
  Tensor bl = block.reshape({b.rows, b.cols});
  kernels::copy_block(view_of(full, b), b.row0, b.col0, bl);
}

void add_block_in(Tensor& full, const Block& b, const Tensor& block, double alpha) {
  check_block("add_block_in", full, b, block);
  if (b.numel() == 0) return;
  Tensor view = view_of(full, b);
  kernels::add_block(view, b.row0, b.col0, block.reshape({b.rows, b.cols}), alpha);
}

}  // namespace quopt
