#pragma once
// Quintic Newton-Schulz orthogonalisation (Muon's "zeroth power", KellerJordan/Muon muon.py,
// zeropower_via_newtonschulz5): X0 = G / (||G||_F + eps), then `steps` times
//     A = X X^T,  B = b A + c A A,  X = a X + B X,
// which maps every singular value s of X0 through p(s) = a s + b s^3 + c s^5 and leaves the singular
// vectors alone. With the reference's coefficients the result is U S' V^T with S' roughly in
// [0.68, 1.13] (not exactly U V^T; the reference accepts that for speed). The Gram matrix is formed on
// the smaller side: a tall G (rows > cols) is processed as G^T, exactly as the reference transposes it.
// Runs on the kernel API (GEMMs through kernels::matmul), in the dtype of G (f32; f64 for tests).
#include <cstdint>

#include "core/tensor.hpp"

namespace quopt {

struct NewtonSchulzOptions {
  // Coefficients of the quintic p(s) = a s + b s^3 + c s^5: KellerJordan/Muon muon.py
  // (commit 857d1ad, zeropower_via_newtonschulz5), chosen there to maximise the slope at zero.
  double a = 3.4445;
  double b = -4.7750;
  double c = 2.0315;
  int steps = 5;      // KellerJordan/Muon muon.py muon_update(ns_steps=5); README: "5 works well"
  double eps = 1e-7;  // X / (||X||_F + 1e-7): KellerJordan/Muon muon.py
};

// out = NS(g): g and out 2-D, same shape, dtype (f32 or f64) and device; out may not alias g.
void newton_schulz(const Tensor& g, Tensor& out, const NewtonSchulzOptions& opt = {});
// Convenience form returning a new tensor.
Tensor newton_schulz(const Tensor& g, const NewtonSchulzOptions& opt = {});

// GEMM flops of newton_schulz on a rows x cols matrix: per step, with s = min and l = max of the two,
// 2 s^2 l (A = X X^T) + 2 s^3 (A A) + 2 s^2 l (B X). The cost model of a sharded orthogonalisation.
double newton_schulz_flops(std::int64_t rows, std::int64_t cols, int steps);

}  // namespace quopt
