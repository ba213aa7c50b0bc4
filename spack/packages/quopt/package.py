# Spack recipe for quopt (docs/spack.md), written after the CMake recipes of Spack's builtin repository
# (Cabana, kokkos-kernels, heffte): CudaPackage's cuda/cuda_arch drive the CUDA backend
# (define_cuda_architectures), every other variant maps onto one QUOPT_ENABLE_<X> option with
# define_from_variant, and the test suite is built and run exactly when Spack runs tests
# (`spack install --test=root quopt`): QUOPT_ENABLE_TESTS follows self.run_tests and the test tools are
# dependencies of type "test".
#
#   spack repo add <checkout>/spack
#   spack install --test=root quopt@main                 # CPU; +cuda cuda_arch=90 for H100/H200
#   spack load quopt                                     # quopt on PATH, quopt_post on PYTHONPATH
from spack_repo.builtin.build_systems.cmake import CMakePackage
from spack_repo.builtin.build_systems.cuda import CudaPackage

from spack.package import *


class Quopt(CMakePackage, CudaPackage):
    """Trains OLMo2-style language models with six optimizers (AdamW, Muon, Scion, Shampoo, SOAP,
    PSGD-Kron), quantizes them (RTN, GPTQ, QuEST) and analyses the quantization error, as in the
    study "Beyond Outliers: A Study of Optimizers Under Quantization" (arXiv:2509.23500).
    MPI-parallel (pipeline x data parallel); host backend on Kokkos and OpenBLAS, CUDA backend with
    cuBLAS."""

    homepage = "https://arxiv.org/abs/2509.23500"
    # quopt's public repository. A site that builds from its own clone or fork sets that instead, in
    # packages.yaml: `quopt: {package_attributes: {git: <url>}}` (docs/spack.md); `spack develop`
    # builds a local checkout without fetching.
    git = "https://github.com/quopt/quopt.git"

    version("main", branch="main")

    # CudaPackage adds `cuda` (QUOPT_ENABLE_CUDA) and `cuda_arch` (CMAKE_CUDA_ARCHITECTURES).
    variant(
        "sanitizers",
        default=False,
        description="AddressSanitizer and UBSan instrumentation (QUOPT_ENABLE_SANITIZERS)",
    )

    generator("ninja")

    depends_on("c", type="build")
    depends_on("cxx", type="build")
    depends_on("cmake@3.25:", type="build")  # cmake_minimum_required, CMakePresets.json version 6
    depends_on("pkgconfig", type="build")  # SentencePiece, LAPACKE and xxHash are found with it

    # The bounds are the versions quopt is built and tested with (docs/spack.md, "Tested versions").
    depends_on("mpi")  # Open MPI 4.1 and 5.0 tested; any MPI-3 library should do
    depends_on("hdf5@1.10:1.14 +mpi")  # the MPI-IO driver writes run files and checkpoints
    # The host execution layer. src/core/runtime.cpp uses InitializationSettings from Kokkos 3.7 and
    # InitArguments before; OpenMP, Threads or Serial as the host space (+openmp preferred in
    # spack.yaml; Debian's Kokkos is Serial-only). quopt's GPU kernels are plain CUDA, so Kokkos stays
    # host-only: a CUDA Kokkos would require compiling every host source with nvcc_wrapper.
    depends_on("kokkos@3.4:4.7")
    conflicts("^kokkos+cuda", msg="quopt needs a host-only Kokkos (~cuda): its GPU kernels are plain CUDA")
    depends_on("openblas")  # BLAS, LAPACK and LAPACKE; the reference BLAS is ~50x slower
    # SentencePiece 0.1.97 is the first whose API takes std::string_view (src/io/tokenizer.cpp compiles
    # against 0.1.97-0.2.0, not 0.1.91-0.1.96). Spack's builtin repository offers only 0.1.85 and 0.1.91
    # up to releases/v2026.02 (Spack 1.1's default is v2025.11) and 0.2.1 from v2026.06: with an older
    # one, register the system's SentencePiece as an external (docs/spack.md; Debian 12: 0.1.97).
    depends_on("sentencepiece@0.1.97:")
    depends_on("toml11@3.7:4")  # src/io/toml_compat.hpp picks the 3.x or 4.x API
    depends_on("cli11@2")
    depends_on("nlohmann-json@3.10:")
    # PCRE2's 8-bit library with Unicode: the pre-tokenizer regex of Hugging Face BPE tokenizers
    # (Debian 12: 10.42).
    depends_on("pcre2")
    depends_on("xxhash@0.8:")
    depends_on("sleef@3.5:")  # vector exp of the softmax loops; Debian 12 ships 3.5.1

    # The test suite (ctest: unit, mpi, e2e, install and, where slurm-wlm is installed, slurm):
    # GoogleTest; h5ls from HDF5's tools; Python with h5py and numpy for the end-to-end checks and
    # with scipy and matplotlib for the report the install test renders. mpiexec comes from the MPI.
    depends_on("googletest", type="test")
    depends_on("hdf5 +tools", type="test")
    depends_on("python@3.11:", type="test")  # tomllib
    depends_on("py-numpy", type="test")
    depends_on("py-h5py", type="test")
    depends_on("py-scipy", type="test")
    depends_on("py-matplotlib", type="test")

    with when("+cuda"):
        depends_on("cuda@12:")  # nvcc 12 for C++20 device code (cmake/QuoptCuda.cmake)
        # NCCL: the CUDA backend's collectives (gradient all-reduce, pipeline transfers), built for
        # the same GPUs.
        depends_on("nccl")
        for _arch in CudaPackage.cuda_arch_values:
            depends_on(f"nccl cuda_arch={_arch}", when=f"cuda_arch={_arch}")
    conflicts("cuda_arch=none", when="+cuda", msg="give the GPU architecture, e.g. cuda_arch=90 (H100)")

    def cmake_args(self):
        args = [
            self.define_from_variant("QUOPT_ENABLE_CUDA", "cuda"),
            self.define_from_variant("QUOPT_ENABLE_SANITIZERS", "sanitizers"),
            self.define("QUOPT_ENABLE_TESTS", self.run_tests),
            self.define("QUOPT_NATIVE", False),  # Spack passes the spec's target flags itself
            self.define("BLA_VENDOR", "OpenBLAS"),
        ]
        if self.spec.satisfies("+cuda"):
            args.append(self.define_cuda_architectures(self))
        return args

    def setup_run_environment(self, env):
        # `python3 -m quopt_post` (the report) from the installed package (cmake/QuoptInstall.cmake).
        env.prepend_path("PYTHONPATH", self.prefix.share.quopt.postprocess)
