# Spack recipe for quopt, in the style of Cabana's: a CMakePackage whose variants map one to one onto
# the project's QUOPT_ENABLE_<X> CMake options (define_from_variant), with CudaPackage's cuda and
# cuda_arch variants driving the CUDA backend and the GPU dependencies.
#
#   spack repo add <checkout>/spack
#   spack install quopt@main +cuda cuda_arch=90      # clones the checkout's committed state
#   spack develop --path <checkout> quopt@=main      # or build the working tree inside an environment
import os

from spack.package import *

try:  # Spack >= 1.0: the build-system base classes live in the builtin package repository
    from spack_repo.builtin.build_systems.cmake import CMakePackage
    from spack_repo.builtin.build_systems.cuda import CudaPackage
except ImportError:  # Spack 0.x exports them from spack.package (imported above)
    pass

# The repository this recipe lives in (spack/packages/quopt/ -> three levels up): quopt has no
# published release, so `spack install quopt@main` clones the local checkout.
_CHECKOUT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir))


class Quopt(CMakePackage, CudaPackage):
    """Trains OLMo2-style language models with six optimizers (AdamW, Muon, Scion, Shampoo, SOAP,
    PSGD), quantizes them (RTN, GPTQ, QuEST) and analyses the quantization error. MPI-parallel
    (pipeline x data parallel); host backend on Kokkos and OpenBLAS, CUDA backend with cuBLAS and
    NCCL."""

    homepage = "file://" + _CHECKOUT
    git = "file://" + _CHECKOUT

    version("main", branch="main")

    # CudaPackage adds `cuda` (-> QUOPT_ENABLE_CUDA) and `cuda_arch` (-> CMAKE_CUDA_ARCHITECTURES).
    variant("tests", default=False, description="Build the GoogleTest suites (QUOPT_ENABLE_TESTS)")

    depends_on("c", type="build")
    depends_on("cxx", type="build")
    depends_on("cmake@3.25:", type="build")  # CMakePresets.json version 6, cmake_minimum_required
    depends_on("pkgconfig", type="build")  # SentencePiece and LAPACKE are found with pkg-config

    depends_on("mpi")
    depends_on("hdf5@1.10: +mpi")  # MPI-IO driver for run files and checkpoints; Debian 12 has 1.10.8
    # Kokkos is the host execution layer (DefaultHostExecutionSpace): OpenMP threads when Spack
    # builds it. Debian 12's Kokkos (Trilinos 13.2) is 3.4.1, the oldest version quopt is built with.
    depends_on("kokkos@3.4: +openmp")
    # quopt's GPU kernels are plain CUDA (kernels/cuda/*.cu); Kokkos stays host-only, because a Kokkos
    # with its CUDA backend would require compiling every host source with nvcc_wrapper.
    conflicts("^kokkos+cuda", msg="quopt needs a host-only Kokkos (~cuda): its GPU kernels are plain CUDA")
    depends_on("openblas")  # BLAS, LAPACK and LAPACKE; the reference BLAS is ~50x slower
    depends_on("sentencepiece")
    depends_on("toml11@3.7:")  # the versions Debian 12 ships and quopt is built with: 3.7.1
    depends_on("cli11@2.1:")  # and 2.1.2
    depends_on("nlohmann-json@3.10:")  # Debian 12 ships 3.11.2
    depends_on("pcre2")  # Unicode regex of Hugging Face tokenizers' pre-tokenizers
    depends_on("xxhash@0.8:")  # XXH3-64 checkpoint checksums; Debian 12 ships 0.8.1
    depends_on("sleef@3.5:")  # vector exp of the softmax loops; Debian 12 ships 3.5.1
    depends_on("googletest", when="+tests")

    depends_on("cuda@12:", when="+cuda")  # nvcc 12 for C++20 device code (cmake/QuoptCuda.cmake)
    depends_on("nccl", when="+cuda")
    conflicts("cuda_arch=none", when="+cuda", msg="give the GPU architecture, e.g. cuda_arch=90 (H100)")
    for _arch in CudaPackage.cuda_arch_values:
        depends_on(f"nccl cuda_arch={_arch}", when=f"+cuda cuda_arch={_arch}")

    def cmake_args(self):
        args = [
            self.define_from_variant("QUOPT_ENABLE_CUDA", "cuda"),
            self.define_from_variant("QUOPT_ENABLE_TESTS", "tests"),
            self.define("QUOPT_ENABLE_SANITIZERS", False),
            self.define("QUOPT_NATIVE", False),  # Spack passes the spec's target flags itself
            self.define("BLA_VENDOR", "OpenBLAS"),
        ]
        if self.spec.satisfies("+cuda"):
            args.append(self.define("CMAKE_CUDA_ARCHITECTURES", list(self.spec.variants["cuda_arch"].value)))
        return args
