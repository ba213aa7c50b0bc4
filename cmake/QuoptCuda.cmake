# CUDA backend: only included when QUOPT_ENABLE_CUDA=ON, so a CPU build never invokes nvcc.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90)  # H100/H200 (sm_90), the study's GPUs
endif()
enable_language(CUDA)
# CMake 3.25 does not know nvcc 12+ supports C++20 and refuses CUDA_STANDARD 20; tell it the flag.
if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION AND CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.0)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
endif()
set(CMAKE_CUDA_STANDARD 20)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
find_package(CUDAToolkit REQUIRED)
set_package_properties(CUDAToolkit PROPERTIES TYPE REQUIRED PURPOSE "CUDA backend: cuBLAS, cuSOLVER")
# NCCL (collectives between GPUs: the data-parallel gradient all-reduce and the sharded optimizers'
# all-gathers). It ships with the CUDA toolkit image used here (/usr/local/cuda) or as libnccl-dev; no
# CMake config, so found by header and library.
find_path(QUOPT_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ENV NCCL_HOME PATH_SUFFIXES include)
find_library(QUOPT_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} ENV NCCL_HOME PATH_SUFFIXES lib lib64)
if(NOT QUOPT_NCCL_INCLUDE_DIR OR NOT QUOPT_NCCL_LIBRARY)
  message(FATAL_ERROR "NCCL not found (nccl.h, libnccl.so): install it (CUDA toolkit image, libnccl-dev or "
                      "spack nccl) or point NCCL_HOME at it")
endif()
add_library(quopt::nccl UNKNOWN IMPORTED)
set_target_properties(quopt::nccl PROPERTIES IMPORTED_LOCATION ${QUOPT_NCCL_LIBRARY}
                                             INTERFACE_INCLUDE_DIRECTORIES ${QUOPT_NCCL_INCLUDE_DIR})
message(STATUS "NCCL: ${QUOPT_NCCL_LIBRARY}")
