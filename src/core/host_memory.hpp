#pragma once
// How quopt's host allocations (Tensor storage) are kept between uses.

namespace quopt {

// glibc's malloc hands large freed blocks back to the kernel (munmap for blocks above its mmap
// threshold, trimming of the heap top above its trim threshold), so every training step page-faults
// its activations in afresh and the kernel zeroes them: 13,000 minor faults (52 MB) per olmo2-small
// step. This serves blocks up to 32 MiB (glibc's largest mmap threshold) from the heap and never trims
// it, so a step reuses the previous step's memory (about 400 faults per step; docs/benchmarks.md).
// Peak RSS is unchanged: the heap's high-water mark is the step's peak either way. Larger blocks still
// come from mmap; the large buffer of the training step (the fused head's work rows) is kept by its
// owner. Called once at start-up (Runtime); a no-op without glibc.
void keep_freed_host_memory();

}  // namespace quopt
