#pragma once
// Helpers for the public dispatch files (kernels/*.cpp): argument checks whose messages name the op,
// the argument and the offending tensor's describe(), the backend routing by device, and the dtype
// switch that instantiates a backend template for float or double.
#include <cstdint>

#include "core/error.hpp"
#include "core/tensor.hpp"

namespace quopt::kernels::detail {

inline void check_defined(const char* op, const char* name, const Tensor& t) {
  QUOPT_CHECK(t.defined(), op, ": argument '", name,
              "' is an undefined tensor; allocate it (Tensor::empty / Tensor::zeros) before the call");
}

// f32 or f64 (the dtypes the host backend computes in).
inline void check_float(const char* op, const char* name, const Tensor& t) {
  check_defined(op, name, t);
  QUOPT_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64, op, ": argument '", name, "' is ",
              t.describe(), "; expected dtype f32 or f64");
}

inline void check_dtype(const char* op, const char* name, const Tensor& t, DType want) {
  check_defined(op, name, t);
  QUOPT_CHECK(t.dtype() == want, op, ": argument '", name, "' is ", t.describe(), "; expected dtype ",
              dtype_name(want));
}

inline void check_ndim(const char* op, const char* name, const Tensor& t, int ndim) {
  QUOPT_CHECK(t.ndim() == ndim, op, ": argument '", name, "' is ", t.describe(), "; expected a ", ndim,
              "-D tensor");
}

inline void check_shape(const char* op, const char* name, const Tensor& t, const Shape& want) {
  QUOPT_CHECK(t.shape() == want, op, ": argument '", name, "' is ", t.describe(), "; expected shape ",
              shape_str(want));
}

// t has ref's dtype and lives on ref's device.
inline void check_like(const char* op, const char* ref_name, const Tensor& ref, const char* name,
                       const Tensor& t) {
  check_defined(op, name, t);
  QUOPT_CHECK(t.dtype() == ref.dtype(), op, ": argument '", name, "' is ", t.describe(), " but '", ref_name,
              "' is ", ref.describe(), "; both must have the same dtype");
  QUOPT_CHECK(t.device() == ref.device(), op, ": argument '", name, "' is ", t.describe(), " but '", ref_name,
              "' is ", ref.describe(), "; both must live on the same device (use Tensor::to)");
}

inline void check_device(const char* op, const char* ref_name, const Tensor& ref, const char* name,
                         const Tensor& t) {
  check_defined(op, name, t);
  QUOPT_CHECK(t.device() == ref.device(), op, ": argument '", name, "' is ", t.describe(), " but '", ref_name,
              "' is ", ref.describe(), "; both must live on the same device (use Tensor::to)");
}

inline void check_same_numel(const char* op, const char* ref_name, const Tensor& ref, const char* name,
                             const Tensor& t) {
  QUOPT_CHECK(t.numel() == ref.numel(), op, ": argument '", name, "' is ", t.describe(), " but '", ref_name,
              "' is ", ref.describe(), "; both must have the same number of elements");
}

// An element-wise operand: ref's dtype and device, and as many elements.
inline void check_operand(const char* op, const char* ref_name, const Tensor& ref, const char* name,
                          const Tensor& t) {
  check_like(op, ref_name, ref, name, t);
  check_same_numel(op, ref_name, ref, name, t);
}

// True when the memory of a and b overlaps (works for host and device pointers alike).
inline bool overlaps(const Tensor& a, const Tensor& b) {
  if (a.numel() == 0 || b.numel() == 0 || a.device() != b.device()) return false;
  const auto* pa = static_cast<const char*>(a.raw());
  const auto* pb = static_cast<const char*>(b.raw());
  return pa < pb + b.nbytes() && pb < pa + a.nbytes();
}

inline void check_no_overlap(const char* op, const char* out_name, const Tensor& out, const char* in_name,
                             const Tensor& in) {
  QUOPT_CHECK(!overlaps(out, in), op, ": output '", out_name, "' ", out.describe(), " overlaps input '",
              in_name, "' ", in.describe(), "; this op does not support aliasing, pass a separate buffer");
}

// Every dimension must fit the 32-bit integers of BLAS / cuBLAS interfaces.
inline int blas_int(const char* op, std::int64_t v) {
  QUOPT_CHECK(v >= 0 && v <= 2147483647LL, op, ": dimension ", v,
              " exceeds the 32-bit range of the BLAS interface; split the operation");
  return static_cast<int>(v);
}

enum class Backend { Host, Cuda };

// Backend that runs an op whose (already device-checked) tensors live where t lives.
inline Backend route([[maybe_unused]] const char* op, const Tensor& t) {
  if (t.is_host()) return Backend::Host;
#ifdef QUOPT_HAVE_CUDA
  return Backend::Cuda;
#else
  fail(op, ": tensor ", t.describe(),
       " lives on a CUDA device but this build has no CUDA backend; reconfigure with "
       "-DQUOPT_ENABLE_CUDA=ON (cmake --preset cuda) or keep the tensors on the host");
#endif
}

// Calls f(T{}) with T = float or double according to dt (checked to be f32/f64 before); returns its result.
template <class F>
decltype(auto) with_float(DType dt, F&& f) {
  if (dt == DType::F64) return f(double{});
  return f(float{});
}

// Runs host_fn or cuda_fn (each a generic lambda taking a float/double tag) for the backend of t, whose
// dtype was checked to be f32/f64, and returns what it returns. Without the CUDA backend, route() has
// already failed for device tensors.
template <class HostFn, class CudaFn>
decltype(auto) run(const char* op, const Tensor& t, HostFn&& host_fn, [[maybe_unused]] CudaFn&& cuda_fn) {
  [[maybe_unused]] const Backend backend = route(op, t);
  return with_float(t.dtype(), [&](auto tag) {
#ifdef QUOPT_HAVE_CUDA
    if (backend == Backend::Cuda) return cuda_fn(tag);
#endif
    return host_fn(tag);
  });
}

}  // namespace quopt::kernels::detail

// QUOPT_ROUTE(op, t, fn, args...): host::fn(args...) or cuda::fn(args...) for the backend of t (route()),
// with T = float or double (t's dtype) usable in args, e.g. x.data<T>(); returns fn's result. For the ops
// whose host and CUDA twins (kernels/host/<op>.hpp, kernels/cuda/<op>.hpp) have the same name and
// signature. Without the CUDA backend only the host call is compiled.
#ifdef QUOPT_HAVE_CUDA
#define QUOPT_IF_CUDA(...) __VA_ARGS__
#else
#define QUOPT_IF_CUDA(...)
#endif
#define QUOPT_ROUTE(op, t, fn, ...)                                                                   \
  ::quopt::kernels::detail::run(                                                                      \
      op, t,                                                                                          \
      [&](auto quopt_tag_) {                                                                          \
        using T [[maybe_unused]] = decltype(quopt_tag_);                                              \
        return host::fn(__VA_ARGS__);                                                                 \
      },                                                                                              \
      [&]([[maybe_unused]] auto quopt_tag_) {                                                         \
        QUOPT_IF_CUDA(using T [[maybe_unused]] = decltype(quopt_tag_); return cuda::fn(__VA_ARGS__);) \
      })
