#pragma once
// The Kokkos execution policy every host kernel of kernels/host/ uses: a 64-bit index range on the
// default host execution space (Serial with Debian's Kokkos; OpenMP/Threads with a Spack build, so
// kernels must be race-free and must not throw inside a parallel region).
#include <Kokkos_Core.hpp>
#include <cstdint>

namespace quopt::kernels::host {

using HostSpace = Kokkos::DefaultHostExecutionSpace;
using HostRange = Kokkos::RangePolicy<HostSpace, Kokkos::IndexType<std::int64_t>>;

// Column chunk width of the deterministic column-parallel reductions (embedding and RMSNorm weight
// gradients): 64 doubles = 512 B, eight cache lines, so each task streams contiguous memory.
inline constexpr std::int64_t kColumnChunk = 64;

}  // namespace quopt::kernels::host
