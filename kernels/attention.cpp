// Public causal attention ops: shape/dtype/device checks, then dispatch to the host backend
// (kernels/host/attention.cpp) or the CUDA backend (kernels/cuda/attention.cu).
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "core/error.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/host/attention.hpp"
#include "kernels/ops.hpp"
#ifdef QUOPT_HAVE_CUDA
#include "kernels/cuda/attention.hpp"
#endif

namespace quopt::kernels {
namespace {

using Named = std::pair<const char*, const Tensor*>;

void check_common(const char* op, std::initializer_list<Named> tensors) {
  for (const auto& [name, t] : tensors) {
    if (!t->defined()) fail(op, ": tensor '", name, "' is undefined; allocate it before calling ", op);
  }
  const DType dt = tensors.begin()->second->dtype();
  if (dt != DType::F32 && dt != DType::F64) {
    fail(op, ": '", tensors.begin()->first, "' is ", tensors.begin()->second->describe(),
         "; attention supports f32 and f64 tensors only");
  }
  for (const auto& [name, t] : tensors) {
    if (t->dtype() != dt) {
      fail(op, ": '", name, "' is ", t->describe(), " but '", tensors.begin()->first, "' is ",
           tensors.begin()->second->describe(), "; all attention tensors must have the same dtype");
    }
    if (t->device() != tensors.begin()->second->device()) {
      fail(op, ": '", name, "' is ", t->describe(), " but '", tensors.begin()->first, "' is ",
           tensors.begin()->second->describe(), "; all attention tensors must live on the same device");
    }
  }
}

void check_shape(const char* op, const char* name, const Tensor& t, const Shape& want) {
  if (t.shape() != want) {
    fail(op, ": '", name, "' is ", t.describe(), ", expected shape ", shape_str(want));
  }
}

// Validates q, k, v (and the optional output-like tensors) and returns the dimensions.
host::AttentionDims attention_dims(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  if (q.ndim() != 4) fail(op, ": q is ", q.describe(), ", expected 4-D [B, T, H, D]");
  if (k.ndim() != 4) fail(op, ": k is ", k.describe(), ", expected 4-D [B, T, Hkv, D]");
  host::AttentionDims d;
  d.batch = q.dim(0);
  d.seq = q.dim(1);
  d.heads = q.dim(2);
  d.head_dim = q.dim(3);
  d.kv_heads = k.dim(2);
  if (d.head_dim <= 0) fail(op, ": q is ", q.describe(), "; the head dimension D must be positive");
  if (d.kv_heads <= 0 || d.heads % d.kv_heads != 0) {
    fail(op, ": q is ", q.describe(), " and k is ", k.describe(), "; the number of query heads H = ", d.heads,
         " must be a positive multiple of the number of kv heads Hkv = ", d.kv_heads);
  }
  const Shape kv_shape{d.batch, d.seq, d.kv_heads, d.head_dim};
  check_shape(op, "k", k, kv_shape);
  check_shape(op, "v", v, kv_shape);
  // cblas takes int dimensions and leading dimensions.
  const std::int64_t int_max = 2147483647;
  if (d.seq > int_max || d.heads * d.head_dim > int_max) {
    fail(op, ": q is ", q.describe(), "; T and H * D must fit a 32-bit BLAS integer");
  }
  return d;
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse) {
  const char* op = "attention_forward";
  check_common(op, {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}, {"lse", &lse}});
  const host::AttentionDims d = attention_dims(op, q, k, v);
  check_shape(op, "out", out, q.shape());
  check_shape(op, "lse", lse, {d.batch, d.heads, d.seq});
  QUOPT_ROUTE(op, q, attention_forward, d, q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(),
              lse.data<T>());
}

void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& out, const Tensor& lse, Tensor& dq, Tensor& dk, Tensor& dv) {
  const char* op = "attention_backward";
  check_common(op, {{"q", &q},
                    {"k", &k},
                    {"v", &v},
                    {"dout", &dout},
                    {"out", &out},
                    {"lse", &lse},
                    {"dq", &dq},
                    {"dk", &dk},
                    {"dv", &dv}});
  const host::AttentionDims d = attention_dims(op, q, k, v);
  check_shape(op, "dout", dout, q.shape());
  check_shape(op, "out", out, q.shape());
  check_shape(op, "lse", lse, {d.batch, d.heads, d.seq});
  check_shape(op, "dq", dq, q.shape());
  check_shape(op, "dk", dk, k.shape());
  check_shape(op, "dv", dv, v.shape());
  QUOPT_ROUTE(op, q, attention_backward, d, dout.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(),
              out.data<T>(), lse.data<T>(), dq.data<T>(), dk.data<T>(), dv.data<T>());
}

}  // namespace quopt::kernels
