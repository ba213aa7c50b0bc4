// core/blas_errors: an argument that BLAS/LAPACK rejects is recorded by an open BlasErrorScope, and
// outside one it stops the process with a message that names the routine and says what it means,
// instead of OpenBLAS's bare "parameter number N had an illegal value".
#include <cblas.h>
#include <gtest/gtest.h>
#include <lapacke.h>

#include <vector>

#include "core/blas_errors.hpp"

namespace quopt {
namespace {

// ssyevd on a 4 x 4 matrix with a workspace of 1 (it needs 1 + 6n + 2n^2): LAPACK rejects LWORK.
lapack_int ssyevd_with_too_small_workspace() {
  std::vector<float> a(16, 0.0f), w(4), work(1);
  std::vector<lapack_int> iwork(64);
  for (int i = 0; i < 4; ++i) a[static_cast<std::size_t>(i * 5)] = static_cast<float>(i);
  return LAPACKE_ssyevd_work(LAPACK_ROW_MAJOR, 'V', 'U', 4, a.data(), 4, w.data(), work.data(), 1, iwork.data(),
                             static_cast<lapack_int>(iwork.size()));
}

TEST(BlasErrors, ScopeRecordsTheRejectionSilently) {
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  std::string recorded;
  lapack_int info = 0;
  {
    BlasErrorScope scope;
    info = ssyevd_with_too_small_workspace();
    recorded = scope.errors();
  }
  const std::string printed = ::testing::internal::GetCapturedStdout() + ::testing::internal::GetCapturedStderr();
  EXPECT_LT(info, 0);
  EXPECT_EQ(recorded, blas_rejection_message("SSYEVD", 8));
  EXPECT_EQ(printed, "");
}

TEST(BlasErrors, NestedScopesRecordInTheInnermostOnly) {
  BlasErrorScope outer;
  {
    BlasErrorScope inner;
    ssyevd_with_too_small_workspace();
    EXPECT_NE(inner.errors().find("SSYEVD"), std::string::npos);
  }
  EXPECT_EQ(outer.errors(), "");
}

TEST(BlasErrorsDeathTest, OutsideAScopeTheProcessStopsWithAnExplanation) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(ssyevd_with_too_small_workspace(),
               "internal error: the BLAS/LAPACK routine SSYEVD rejected its argument number 8 as illegal.*bug in "
               "quopt");
  // A BLAS routine goes the same way (cblas_sgemm with lda < k).
  std::vector<float> a(4), b(4), c(4);
  EXPECT_DEATH(cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1.0f, a.data(), 1, b.data(), 2,
                           0.0f, c.data(), 2),
               "routine SGEMM rejected its argument number");
}

}  // namespace
}  // namespace quopt
