// The main of every MPI test binary: MPI_Init, GoogleTest on every rank (only rank 0 prints),
// and an exit code that fails if any rank failed. The final MPI_Allreduce runs after all tests,
// like MPI_Init and MPI_Finalize: start-up/shutdown collectives only, never during a test.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

inline int run_mpi_gtest(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int rc = RUN_ALL_TESTS();
  int worst = rc;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
