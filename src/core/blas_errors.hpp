#pragma once
// What happens when BLAS or LAPACK rejects an argument. OpenBLAS reports it by calling xerbla_ (and
// LAPACKE by calling LAPACKE_xerbla), whose default prints a bare "** On entry to SSYEVD parameter
// number 8 had an illegal value" on stdout and returns, leaving the caller to find out from `info`.
// quopt replaces both (blas_errors.cpp defines the two symbols; the dynamic linker resolves
// OpenBLAS's calls to them):
//  - inside a BlasErrorScope the rejection is recorded on the scope, silently; the caller turns it
//    into its own error message (matrix_functions: the eigendecomposition reports it and retries or
//    keeps its previous value);
//  - outside any scope it is a quopt bug (every BLAS/LAPACK call checks its dimensions first): the
//    message names the routine and the argument, says so, and the process aborts rather than go on
//    with a result the library never computed.
#include <string>

namespace quopt {

class BlasErrorScope {
 public:
  BlasErrorScope();
  ~BlasErrorScope();
  BlasErrorScope(const BlasErrorScope&) = delete;
  BlasErrorScope& operator=(const BlasErrorScope&) = delete;

  // blas_rejection_message(...) of each rejection since the scope opened, "; "-separated ("" if none).
  const std::string& errors() const { return errors_; }
  void record(const std::string& what);

 private:
  BlasErrorScope* outer_;
  std::string errors_;
};

// The message of a rejection: routine name (as BLAS/LAPACK spell it) and 1-based argument number.
std::string blas_rejection_message(const std::string& routine, int argument);

}  // namespace quopt
