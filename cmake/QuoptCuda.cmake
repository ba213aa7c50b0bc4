# CUDA backend: only included when QUOPT_ENABLE_CUDA=ON, so a CPU build never invokes nvcc.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90)  # H100/H200 (sm_90), the study's GPUs
endif()
enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 20)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
find_package(CUDAToolkit REQUIRED)
set_package_properties(CUDAToolkit PROPERTIES TYPE REQUIRED PURPOSE "CUDA backend: cuBLAS, cuSOLVER")
