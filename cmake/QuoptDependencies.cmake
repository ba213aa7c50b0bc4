# Finds quopt's dependencies the standard way and exposes each as one imported target:
#   MPI::MPI_CXX, quopt::hdf5, quopt::kokkos, quopt::blas, quopt::sentencepiece, toml11::toml11,
#   nlohmann_json::nlohmann_json, quopt::pcre2, quopt::xxhash, quopt::sleef, CLI11::CLI11, GTest
# The versions each is built and tested with are in docs/spack.md ("Tested versions").
include(CheckSymbolExists)

find_package(MPI REQUIRED COMPONENTS C CXX)
set_package_properties(MPI PROPERTIES TYPE REQUIRED PURPOSE "process grid, collectives, parallel HDF5")

# --- parallel HDF5 ---------------------------------------------------------------
set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)
set_package_properties(HDF5 PROPERTIES TYPE REQUIRED PURPOSE "run files and checkpoints (MPI-IO driver)")
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "quopt needs a parallel (MPI) build of HDF5; found a serial one at ${HDF5_INCLUDE_DIRS}. "
                      "On Debian install libhdf5-openmpi-dev; with Spack use hdf5+mpi.")
endif()
add_library(quopt::hdf5 INTERFACE IMPORTED)
target_include_directories(quopt::hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_link_libraries(quopt::hdf5 INTERFACE ${HDF5_C_LIBRARIES} MPI::MPI_C)
target_compile_definitions(quopt::hdf5 INTERFACE ${HDF5_C_DEFINITIONS})

# --- Kokkos ------------------------------------------------------------------------
# Debian's libtrilinos-kokkos-dev ships a Kokkos::kokkos target whose include directory points at
# ${prefix}/include although the headers live in ${prefix}/include/trilinos; Kokkos_INCLUDE_DIRS is
# right, so the target's include directory is reset from it.
find_package(Kokkos REQUIRED)
set_package_properties(Kokkos PROPERTIES TYPE REQUIRED PURPOSE "host execution layer of the kernels")
add_library(quopt::kokkos INTERFACE IMPORTED)
if(TARGET Kokkos::kokkos)
  if(Kokkos_INCLUDE_DIRS)
    set_target_properties(Kokkos::kokkos PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${Kokkos_INCLUDE_DIRS}")
  endif()
  target_link_libraries(quopt::kokkos INTERFACE Kokkos::kokkos)
else()
  target_include_directories(quopt::kokkos SYSTEM INTERFACE ${Kokkos_INCLUDE_DIRS})
  target_link_libraries(quopt::kokkos INTERFACE ${Kokkos_LIBRARIES})
endif()
if(Kokkos_INCLUDE_DIRS)
  target_include_directories(quopt::kokkos SYSTEM INTERFACE ${Kokkos_INCLUDE_DIRS})
endif()

# --- BLAS / LAPACK(E): OpenBLAS explicitly (the generic libblas is the reference BLAS, ~50x slower)
if(NOT DEFINED BLA_VENDOR)
  set(BLA_VENDOR OpenBLAS)
endif()
find_package(BLAS REQUIRED)
find_package(LAPACK REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(LAPACKE IMPORTED_TARGET lapacke)
find_path(QUOPT_CBLAS_INCLUDE_DIR NAMES cblas.h PATH_SUFFIXES openblas x86_64-linux-gnu/openblas-pthread)
find_path(QUOPT_LAPACKE_INCLUDE_DIR NAMES lapacke.h PATH_SUFFIXES openblas x86_64-linux-gnu/openblas-pthread)
add_library(quopt::blas INTERFACE IMPORTED)
target_link_libraries(quopt::blas INTERFACE ${LAPACK_LIBRARIES} ${BLAS_LIBRARIES})
if(TARGET PkgConfig::LAPACKE)
  target_link_libraries(quopt::blas INTERFACE PkgConfig::LAPACKE)
endif()
foreach(dir ${QUOPT_CBLAS_INCLUDE_DIR} ${QUOPT_LAPACKE_INCLUDE_DIR})
  target_include_directories(quopt::blas SYSTEM INTERFACE ${dir})
endforeach()

# --- SentencePiece -----------------------------------------------------------------
# 0.1.97 is the first SentencePiece whose API takes std::string_view (Encode; before: its own
# absl::string_view class); SetRandomGeneratorSeed and the trainer's `minloglevel` date from 0.1.94.
# src/io/tokenizer.cpp compiles against the headers of 0.1.97 through 0.2.0 and not of 0.1.91-0.1.96.
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece>=0.1.97)
add_library(quopt::sentencepiece INTERFACE IMPORTED)
target_link_libraries(quopt::sentencepiece INTERFACE PkgConfig::SENTENCEPIECE)
find_library(QUOPT_SPM_TRAIN_LIB NAMES sentencepiece_train)
if(QUOPT_SPM_TRAIN_LIB)
  target_link_libraries(quopt::sentencepiece INTERFACE ${QUOPT_SPM_TRAIN_LIB})
else()
  message(FATAL_ERROR "libsentencepiece_train not found: install libsentencepiece-dev (Debian) or sentencepiece (Spack)")
endif()

# --- JSON (task files, safetensors headers, Hugging Face config.json and tokenizer.json) -------
find_package(nlohmann_json 3.10 REQUIRED)
set_package_properties(nlohmann_json PROPERTIES TYPE REQUIRED PURPOSE "JSON: task files, safetensors, Hugging Face files")

# --- PCRE2 (8-bit, UTF + Unicode properties): the pre-tokenizer regex of Hugging Face BPE tokenizers --
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
add_library(quopt::pcre2 INTERFACE IMPORTED)
target_link_libraries(quopt::pcre2 INTERFACE PkgConfig::PCRE2)
target_compile_definitions(quopt::pcre2 INTERFACE PCRE2_CODE_UNIT_WIDTH=8)

# --- SLEEF: the vector exp of the softmax loops (kernels/host/vec_exp.hpp) -------------------------
# Debian's libsleef-dev and Spack's sleef install sleef.pc; a SLEEF without it is found by file names.
pkg_check_modules(SLEEF IMPORTED_TARGET sleef>=3.5)
add_library(quopt::sleef INTERFACE IMPORTED)
if(TARGET PkgConfig::SLEEF)
  target_link_libraries(quopt::sleef INTERFACE PkgConfig::SLEEF)
else()
  find_path(QUOPT_SLEEF_INCLUDE_DIR NAMES sleef.h)
  find_library(QUOPT_SLEEF_LIBRARY NAMES sleef)
  if(NOT QUOPT_SLEEF_INCLUDE_DIR OR NOT QUOPT_SLEEF_LIBRARY)
    message(FATAL_ERROR "SLEEF (>= 3.5) not found: install libsleef-dev (Debian) or sleef (Spack), or set "
                        "CMAKE_PREFIX_PATH to its prefix")
  endif()
  target_include_directories(quopt::sleef SYSTEM INTERFACE ${QUOPT_SLEEF_INCLUDE_DIR})
  target_link_libraries(quopt::sleef INTERFACE ${QUOPT_SLEEF_LIBRARY})
endif()

# --- xxHash: checkpoint checksums. It installs a pkg-config file (Debian's libxxhash-dev and Spack's
# xxhash alike), no CMake package.
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash>=0.8)
add_library(quopt::xxhash INTERFACE IMPORTED)
target_link_libraries(quopt::xxhash INTERFACE PkgConfig::XXHASH)

# --- TOML, CLI, tests --------------------------------------------------------------------
# toml11 3.7 through 4.x: src/io/toml_compat.hpp picks the API by TOML11_VERSION_MAJOR.
find_package(toml11 REQUIRED)
set_package_properties(toml11 PROPERTIES TYPE REQUIRED PURPOSE "configuration files")
find_package(CLI11 REQUIRED)
set_package_properties(CLI11 PROPERTIES TYPE REQUIRED PURPOSE "command line")
if(QUOPT_ENABLE_TESTS)
  find_package(GTest REQUIRED)
  set_package_properties(GTest PROPERTIES TYPE REQUIRED PURPOSE "unit and MPI tests")
endif()
