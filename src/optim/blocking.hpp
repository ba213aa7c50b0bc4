#pragma once
// Blocking of parameters for block-diagonal preconditioners (Shampoo), following
// facebookresearch/optimizers (distributed_shampoo/utils/shampoo_utils.py, shampoo_distributor.py):
// a parameter's shape is first reshaped by merging small dimensions (merge_small_dims with the
// default target dimensionality 1), then every dimension is split into chunks of at most
// max_dim (multi_dim_split: full chunks first, a smaller last one). A block is a sub-array of the
// merged view; its name "<param>#i" (1-D) or "<param>#i,j" (2-D, block row i, block column j) is
// stable: it depends only on the parameter name, its shape, max_dim and the merge flag, never on the
// number of ranks, so state saved under it resumes on any rank count.
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace quopt {

struct Block {
  std::string name;       // "<param>#i" or "<param>#i,j"
  int order = 2;          // 1 or 2: dimensions of the merged view (and of the block)
  std::int64_t rows = 1;  // block extent along the merged view's first dimension (1 for order 1)
  std::int64_t cols = 0;  // block extent along the last dimension
  std::int64_t row0 = 0;  // offset of the block in the merged view (0 for order 1)
  std::int64_t col0 = 0;
  std::int64_t ld = 0;  // row length of the merged view (elements)
  Shape shape() const { return order == 1 ? Shape{cols} : Shape{rows, cols}; }
  std::int64_t numel() const { return rows * cols; }
};

// The reference's merge_small_dims(shape, threshold, target_tensor_dimensionality=1): dimensions of
// size 1 are dropped (all ones -> {1}); then, scanning from the last dimension, adjacent dimensions
// are multiplied together while the product stays <= threshold. A shape with a 0 becomes {0}.
// Examples: {32, 32}, 1024 -> {1024};  {32, 128}, 1024 -> {32, 128};  {1, 7} -> {7}.
Shape merge_small_dims(const Shape& shape, std::int64_t threshold);

// The blocks of a parameter: shape merged by merge_small_dims(shape, max_dim) when merge is set
// (otherwise used as is), then split into chunks of at most max_dim per dimension, in row-major block
// order. The merged view must have 1 or 2 dimensions (quopt parameters are 1-D or 2-D); max_dim >= 1.
std::vector<Block> make_blocks(const std::string& param_name, const Shape& shape, std::int64_t max_dim,
                               bool merge);

// block (f32, b.shape()) = the elements of full (f32, any shape with the merged view's numel) in b.
void copy_block_out(const Tensor& full, const Block& b, Tensor& block);
// full[b] += alpha * block (f32), elementwise in row-major order.
void add_block_in(Tensor& full, const Block& b, const Tensor& block, double alpha);

}  // namespace quopt
