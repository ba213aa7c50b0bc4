#include "core/host_memory.hpp"

#include <cstdlib>  // defines __GLIBC__ with glibc

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace quopt {

void keep_freed_host_memory() {
#if defined(__GLIBC__)
  // mallopt's documented limits: M_MMAP_THRESHOLD at most 32 MiB on 64-bit (HEAP_MAX_SIZE / 2);
  // M_TRIM_THRESHOLD -1 disables trimming.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, -1);
#endif
}

}  // namespace quopt
