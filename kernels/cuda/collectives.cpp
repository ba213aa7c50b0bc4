// NCCL collectives for the CUDA backend (see kernels/collectives.hpp). Host code only (the host compiler
// builds it, in the cuda preset only): NCCL communicators bootstrapped from MPI and cached on the MPI
// communicator, one high-priority collective stream ordered against the compute stream with events.
#include "kernels/cuda/collectives.hpp"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>

#include "core/error.hpp"
#include "kernels/cuda/stream.hpp"

namespace quopt::kernels::cuda {

namespace {

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("CUDA error in ", what, ": ", cudaGetErrorString(e));
}

void check_nccl(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) fail("NCCL error in ", what, ": ", ncclGetErrorString(r));
}

// Operations per NCCL group: NCCL fuses the operations of a group into few launches; a bounded group keeps
// its internal work lists small whatever the number of optimizer blocks (quopt choice).
constexpr std::size_t kGroupOps = 256;

// The stream collectives run on: non-blocking, at the device's highest priority so that its kernels are
// scheduled as soon as they are ready while the compute stream's backward keeps the GPU busy. Created once
// and never destroyed (as the compute stream: destruction at exit races the runtime's teardown).
cudaStream_t collective_stream() {
  static cudaStream_t s = [] {
    int least = 0, greatest = 0;
    check_cuda(cudaDeviceGetStreamPriorityRange(&least, &greatest), "cudaDeviceGetStreamPriorityRange");
    cudaStream_t st = nullptr;
    check_cuda(cudaStreamCreateWithPriority(&st, cudaStreamNonBlocking, greatest),
               "cudaStreamCreateWithPriority");
    return st;
  }();
  return s;
}

cudaEvent_t record(cudaStream_t s) {
  cudaEvent_t e = nullptr;
  check_cuda(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  check_cuda(cudaEventRecord(e, s), "cudaEventRecord");
  return e;
}

// `to` waits for the work queued on `from` so far.
void order_after(cudaStream_t from, cudaStream_t to) {
  cudaEvent_t e = record(from);
  check_cuda(cudaStreamWaitEvent(to, e, 0), "cudaStreamWaitEvent");
  check_cuda(cudaEventDestroy(e), "cudaEventDestroy");  // released once recorded; the wait stays queued
}

// MPI attribute key under which an MPI communicator keeps its NCCL communicator.
int g_keyval = MPI_KEYVAL_INVALID;

// Attribute delete callback (MPI_Comm_free of the MPI communicator): the collectives queued on the NCCL
// communicator end first. Must not throw.
int destroy_nccl(MPI_Comm, int, void* attr, void*) {
  (void)cudaStreamSynchronize(collective_stream());
  (void)ncclCommDestroy(static_cast<ncclComm_t>(attr));
  return MPI_SUCCESS;
}

ncclComm_t nccl_of(MPI_Comm comm) {
  if (g_keyval == MPI_KEYVAL_INVALID)
    MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, &destroy_nccl, &g_keyval, nullptr);
  void* attr = nullptr;
  int found = 0;
  MPI_Comm_get_attr(comm, g_keyval, &attr, &found);
  if (found != 0) return static_cast<ncclComm_t>(attr);
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  // One ncclUniqueId, made by rank 0 and broadcast (the bootstrap NCCL's documentation gives for MPI
  // programs); its failure is broadcast too, so that no rank waits for an id that never comes.
  ncclUniqueId id{};
  int ok = 1;
  if (rank == 0) ok = ncclGetUniqueId(&id) == ncclSuccess ? 1 : 0;
  MPI_Bcast(&ok, 1, MPI_INT, 0, comm);
  QUOPT_CHECK(ok == 1, "ncclGetUniqueId failed on rank 0 of a ", size,
              "-rank communicator; check NCCL's installation and network (NCCL_DEBUG=WARN tells more)");
  MPI_Bcast(&id, static_cast<int>(sizeof id), MPI_BYTE, 0, comm);
  ncclComm_t nc = nullptr;
  const ncclResult_t r = ncclCommInitRank(&nc, size, id, rank);
  int good = r == ncclSuccess ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &good, 1, MPI_INT, MPI_MIN, comm);
  if (good != 1) {
    if (r == ncclSuccess) (void)ncclCommDestroy(nc);
    fail("ncclCommInitRank failed on ", r == ncclSuccess ? "another rank" : "this rank", " (",
         ncclGetErrorString(r), ") for a ", size,
         "-rank communicator; NCCL needs one distinct GPU per rank (NCCL_DEBUG=WARN tells more)");
  }
  MPI_Comm_set_attr(comm, g_keyval, nc);
  return nc;
}

ncclDataType_t nccl_type(bool f64) {
  return f64 ? ncclFloat64 : ncclFloat32;
}

}  // namespace

void comm_init(MPI_Comm comm) {
  (void)nccl_of(comm);
}

void* allreduce_sum_start(void* data, std::int64_t count, bool f64, MPI_Comm comm) {
  ncclComm_t nc = nccl_of(comm);
  const cudaStream_t cs = collective_stream();
  order_after(stream(), cs);
  check_nccl(ncclAllReduce(data, data, static_cast<std::size_t>(count), nccl_type(f64), ncclSum, nc, cs),
             "ncclAllReduce");
  return record(cs);
}

void wait_collective(void* event, bool nothrow) {
  auto* e = static_cast<cudaEvent_t>(event);
  const cudaError_t w = cudaStreamWaitEvent(stream(), e, 0);
  const cudaError_t d = cudaEventDestroy(e);
  if (nothrow) return;
  check_cuda(w, "cudaStreamWaitEvent (collective)");
  check_cuda(d, "cudaEventDestroy (collective)");
}

void broadcast_each(const std::vector<Buffer>& bufs, MPI_Comm comm) {
  ncclComm_t nc = nccl_of(comm);
  const cudaStream_t cs = collective_stream();
  order_after(stream(), cs);
  for (std::size_t i0 = 0; i0 < bufs.size(); i0 += kGroupOps) {
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    ncclResult_t first = ncclSuccess;
    for (std::size_t i = i0; i < std::min(bufs.size(), i0 + kGroupOps); ++i) {
      const Buffer& b = bufs[i];
      if (b.count == 0) continue;
      const ncclResult_t r =
          ncclBroadcast(b.data, b.data, static_cast<std::size_t>(b.count), nccl_type(b.f64), b.root, nc, cs);
      if (first == ncclSuccess) first = r;
    }
    const ncclResult_t end = ncclGroupEnd();  // always closes the group
    check_nccl(first, "ncclBroadcast");
    check_nccl(end, "ncclGroupEnd");
  }
  order_after(cs, stream());
}

}  // namespace quopt::kernels::cuda
