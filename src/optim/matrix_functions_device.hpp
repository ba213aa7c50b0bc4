#pragma once
// The matrix functions of optim/matrix_functions.hpp for matrices that live on a device (the CUDA
// backend): the same contracts, results and failure reporting, computed with the kernel API
// (kernels/optim_ops.hpp: cuSOLVER eigendecomposition and QR, GEMMs, element-wise helpers) so that no
// matrix leaves the device; only eigenvalues (n numbers) and scalar checks are read by the host.
// optim/matrix_functions.cpp calls these for device tensors; nothing else needs to.
#include "optim/matrix_functions.hpp"

namespace quopt::device_matrix {

bool all_finite_device(const Tensor& t);
EighResult eigh_device(const Tensor& a, bool retry_fp64);
QrResult qr_device(const Tensor& a);
RootResult inverse_root_eigen_device(const Tensor& a, double p, double epsilon, bool retry_fp64);
RootResult inverse_root_newton_device(const Tensor& a, int p, double epsilon, int max_iterations,
                                      double tolerance);

}  // namespace quopt::device_matrix
