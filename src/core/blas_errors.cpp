#include "core/blas_errors.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace quopt {

namespace {
thread_local BlasErrorScope* g_scope = nullptr;

void report(const std::string& what) {
  if (g_scope) {
    g_scope->record(what);
    return;
  }
  std::fprintf(stderr,
               "quopt: internal error: %s. quopt checks every dimension before calling BLAS/LAPACK, so this "
               "is a bug in quopt, not in your input; please report it with the command that produced it. "
               "Aborting rather than continuing with a result the library did not compute.\n",
               what.c_str());
  std::fflush(stderr);
  std::abort();
}

// Fortran names arrive blank-padded and not NUL-terminated.
std::string trimmed(const char* name, std::size_t len) {
  std::string s(name, len);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}
}  // namespace

BlasErrorScope::BlasErrorScope() : outer_(g_scope) {
  g_scope = this;
}

BlasErrorScope::~BlasErrorScope() {
  g_scope = outer_;
}

void BlasErrorScope::record(const std::string& what) {
  if (!errors_.empty()) errors_ += "; ";
  errors_ += what;
}

std::string blas_rejection_message(const std::string& routine, int argument) {
  return "the BLAS/LAPACK routine " + routine + " rejected its argument number " + std::to_string(argument) +
         " as illegal";
}

}  // namespace quopt

// The replacements OpenBLAS and LAPACKE call (their own print and return). xerbla_ has Fortran's
// calling convention: the name's length comes as a hidden trailing argument.
extern "C" void xerbla_(const char* name, const blasint* info, int len) {
  quopt::report(quopt::blas_rejection_message(quopt::trimmed(name, len > 0 ? static_cast<std::size_t>(len) : 0),
                                              info ? *info : 0));
}

extern "C" void LAPACKE_xerbla(const char* name, lapack_int info) {
  // Negative values other than LAPACKE's two allocation codes are -(argument number).
  if (info == LAPACK_WORK_MEMORY_ERROR || info == LAPACK_TRANSPOSE_MEMORY_ERROR) {
    // Not a bug: the call returns this code and its caller reports the failure.
    const std::string what = std::string("LAPACKE could not allocate ") +
                             (info == LAPACK_WORK_MEMORY_ERROR ? "its work array" : "a transposed copy") +
                             " in " + name + " (out of memory)";
    if (quopt::g_scope) {
      quopt::g_scope->record(what);
    } else {
      std::fprintf(stderr, "quopt: %s; the operation reports the failure\n", what.c_str());
    }
    return;
  }
  if (info < 0) quopt::report(quopt::blas_rejection_message(name, static_cast<int>(-info)));
}
