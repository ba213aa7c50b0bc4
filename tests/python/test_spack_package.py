"""The Spack files against the CMake build they describe, without Spack (CI has none; docs/spack.md
says how the recipe and spack.yaml were run with a real Spack 1.1).

spack/packages/quopt/package.py is imported against a small stub of the Spack 1.x package API (the
directives record their arguments; define/define_from_variant/define_cuda_architectures format as
Spack's build_systems/cmake.py does). The tests then hold the recipe and spack.yaml to the CMake
files: every QUOPT_ENABLE_* option is driven by exactly one variant (or, for the tests, by
run_tests), every minimum version CMake asks for is the recipe's lower bound, spack.yaml bounds the
shared libraries exactly as the recipe does, and the run environment points at the directory the
install rules put the postprocess package in. Expected values are read from the CMake files, not
from the recipe.
"""

import contextlib
import importlib.util
import os
import re
import sys
import types
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "spack" / "packages" / "quopt" / "package.py"
CUDA_ARCHS = ("70", "80", "90")  # a subset of CudaPackage.cuda_arch_values is enough here


# --- the stub of Spack's package API ------------------------------------------------------------

class Variant:
    def __init__(self, value):
        self.value = value


class Spec:
    """Variants only: Spec(cuda=True, sanitizers=False, cuda_arch=("90",))."""

    def __init__(self, **variants):
        self.variants = {k: Variant(v) for k, v in variants.items()}

    def satisfies(self, text):
        for tok in re.findall(r"[+~]\w+|\w+=[\w,]+", text):
            if tok[0] in "+~":
                if self.variants[tok[1:]].value != (tok[0] == "+"):
                    return False
            else:
                name, vals = tok.split("=")
                if set(self.variants[name].value) != set(vals.split(",")):
                    return False
        return True


_pending = []
_when_stack = []


def _directive(kind):
    def record(*args, **kwargs):
        if _when_stack:  # `with when(...)`: Spack joins the context's condition with the directive's
            kwargs["when"] = " ".join(_when_stack + ([kwargs["when"]] if kwargs.get("when") else []))
        _pending.append((kind, args, kwargs))
    return record


@contextlib.contextmanager
def when(condition):
    _when_stack.append(condition)
    try:
        yield
    finally:
        _when_stack.pop()


def _define(name, value):
    if isinstance(value, bool):
        return f"-D{name}:BOOL={'ON' if value else 'OFF'}"
    if isinstance(value, (list, tuple)):
        return f"-D{name}:STRING={';'.join(str(v) for v in value)}"
    return f"-D{name}:STRING={value}"


class Prefix(str):
    """Spack's Prefix: attribute access appends a path component."""

    def __getattr__(self, name):
        return Prefix(os.path.join(self, name))


class Env:
    def __init__(self):
        self.prepended = []

    def prepend_path(self, name, value):
        self.prepended.append((name, str(value)))


class PackageBase:
    """Keeps the directives run in each class body (as Spack's DirectiveMeta does); all_of(kind)
    returns them for the class and its bases, bases first."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._own = list(_pending)
        _pending.clear()

    @classmethod
    def all_of(cls, kind):
        return [(a, k) for c in reversed(cls.__mro__) for d, a, k in c.__dict__.get("_own", []) if d == kind]

    def __init__(self, spec, run_tests=False, prefix="/opt/quopt"):
        self.spec = spec
        self.run_tests = run_tests
        self.prefix = Prefix(prefix)

    @staticmethod
    def define(name, value):
        return _define(name, value)

    def define_from_variant(self, name, variant):
        return _define(name, self.spec.variants[variant].value)

    @staticmethod
    def define_cuda_architectures(pkg):
        if "cuda_arch" in pkg.spec.variants:
            return _define("CMAKE_CUDA_ARCHITECTURES", pkg.spec.variants["cuda_arch"].value)
        return ""


class CMakePackage(PackageBase):
    _directive("variants")("build_type", default="Release")


class CudaPackage(PackageBase):
    cuda_arch_values = CUDA_ARCHS
    _directive("variants")("cuda", default=False)
    _directive("variants")("cuda_arch", values=("none",) + CUDA_ARCHS, multi=True, when="+cuda")


@pytest.fixture
def Quopt(monkeypatch):
    package = types.ModuleType("spack.package")
    names = {"version": "versions", "variant": "variants", "depends_on": "dependencies",
             "conflicts": "conflicts", "generator": "generators"}
    for fn, kind in names.items():
        setattr(package, fn, _directive(kind))
    package.when = when
    package.__all__ = list(names) + ["when"]
    spack = types.ModuleType("spack")
    spack.package = package
    modules = {"spack": spack, "spack.package": package}
    for name in ["spack_repo", "spack_repo.builtin", "spack_repo.builtin.build_systems"]:
        modules[name] = types.ModuleType(name)
    cmake = modules["spack_repo.builtin.build_systems.cmake"] = types.ModuleType("cmake")
    cmake.CMakePackage = CMakePackage
    cuda = modules["spack_repo.builtin.build_systems.cuda"] = types.ModuleType("cuda")
    cuda.CudaPackage = CudaPackage
    for name, mod in modules.items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location("quopt_spack_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Quopt


def _deps(cls):
    """[(spec text, when or None, type or None)] of the depends_on directives."""
    return [(a[0], k.get("when"), k.get("type")) for a, k in cls.all_of("dependencies")]


def _name(spec_text):
    return re.split(r"[@ +~]", spec_text)[0]


# --- what the CMake files say -----------------------------------------------------------------

def _cmake(path):
    return (REPO / path).read_text()


def _cmake_options():
    """option(QUOPT_ENABLE_X ...) names in the top-level CMakeLists.txt."""
    return set(re.findall(r"^option\((QUOPT_ENABLE_\w+)", _cmake("CMakeLists.txt"), re.M))


def _cmake_minimum_versions():
    """{spack package name: minimum version} from cmake/QuoptDependencies.cmake and CMakeLists.txt."""
    deps = _cmake("cmake/QuoptDependencies.cmake")
    spack_name = {"nlohmann_json": "nlohmann-json", "libxxhash": "xxhash", "sentencepiece": "sentencepiece",
                  "sleef": "sleef"}
    found = {}
    for pkg, version in re.findall(r"find_package\((\w+) ([0-9.]+)", deps):
        found[spack_name.get(pkg, pkg.lower())] = version
    for pkg, version in re.findall(r"IMPORTED_TARGET (\w+)>=([0-9.]+)", deps):
        found[spack_name[pkg]] = version
    found["cmake"] = re.search(r"cmake_minimum_required\(VERSION ([0-9.]+)", _cmake("CMakeLists.txt")).group(1)
    return found


# --- the recipe ---------------------------------------------------------------------------------

def test_public_fetch_urls(Quopt):
    for attr in ("homepage", "git"):
        assert getattr(Quopt, attr).startswith("https://"), f"{attr} is not a public https URL"
    assert [a[0] for a, _ in Quopt.all_of("versions")] == ["main"]


def test_every_cmake_option_has_one_variant_or_run_tests(Quopt):
    args_on = Quopt(Spec(cuda=True, sanitizers=True, cuda_arch=("90",)), run_tests=True).cmake_args()
    args_off = Quopt(Spec(cuda=False, sanitizers=False), run_tests=False).cmake_args()
    quopt_on = {a for a in args_on if a.startswith("-DQUOPT_ENABLE_")}
    quopt_off = {a for a in args_off if a.startswith("-DQUOPT_ENABLE_")}
    assert quopt_on == {f"-D{o}:BOOL=ON" for o in _cmake_options()}
    assert quopt_off == {f"-D{o}:BOOL=OFF" for o in _cmake_options()}
    # QUOPT_NATIVE (-march=native) stays off: Spack passes the spec's target flags itself.
    assert re.search(r"^option\(QUOPT_NATIVE\b", _cmake("CMakeLists.txt"), re.M)
    for args in (args_on, args_off):
        assert "-DQUOPT_NATIVE:BOOL=OFF" in args
    # Tests follow Spack's --test, not a variant (the convention of Cabana/kokkos-kernels).
    variants = {a[0] for a, _ in Quopt.all_of("variants")}
    assert "tests" not in variants
    assert variants >= {"cuda", "cuda_arch", "sanitizers"}


@pytest.mark.parametrize("run_tests", [False, True])
def test_tests_follow_run_tests(Quopt, run_tests):
    args = Quopt(Spec(cuda=False, sanitizers=False), run_tests=run_tests).cmake_args()
    assert f"-DQUOPT_ENABLE_TESTS:BOOL={'ON' if run_tests else 'OFF'}" in args


@pytest.mark.parametrize("archs", [("90",), ("80", "90")])
def test_cuda_architectures(Quopt, archs):
    args = Quopt(Spec(cuda=True, sanitizers=False, cuda_arch=archs)).cmake_args()
    assert f"-DCMAKE_CUDA_ARCHITECTURES:STRING={';'.join(archs)}" in args
    cpu = Quopt(Spec(cuda=False, sanitizers=False)).cmake_args()
    assert not [a for a in cpu if "CUDA_ARCHITECTURES" in a]
    assert "" not in cpu


def test_lower_bounds_match_cmake(Quopt):
    bounds = {_name(s): s for s, when, _ in _deps(Quopt) if when is None}
    for pkg, version in _cmake_minimum_versions().items():
        assert pkg in bounds, f"CMake needs {pkg} {version}, the recipe has no depends_on('{pkg}...')"
        assert re.search(rf"@{re.escape(version)}(:|$| )", bounds[pkg]), (
            f"CMake asks for {pkg} >= {version}, the recipe for '{bounds[pkg]}'")


def test_dependencies(Quopt):
    deps = _deps(Quopt)
    link = {_name(s): s for s, when, t in deps if when is None and t is None}
    for name in ["mpi", "hdf5", "kokkos", "openblas", "sentencepiece", "toml11", "cli11",
                 "nlohmann-json", "pcre2", "xxhash", "sleef"]:
        assert name in link, f"no link dependency on {name}"
    assert "+mpi" in link["hdf5"], "parallel HDF5 is required (MPI-IO)"
    build = {_name(s) for s, when, t in deps if t == "build"}
    assert {"cmake", "c", "cxx", "pkgconfig"} <= build
    test_only = {_name(s) for s, when, t in deps if t == "test"}
    assert {"googletest", "python", "py-h5py", "py-numpy", "py-scipy", "py-matplotlib"} <= test_only
    assert "googletest" not in link, "the tests are not installed: googletest is a test dependency"
    assert ("cuda@12:", "+cuda", None) in deps
    for arch in CUDA_ARCHS:
        assert (f"nccl cuda_arch={arch}", f"+cuda cuda_arch={arch}", None) in deps, arch
    conflicts = {a[0]: k for a, k in Quopt.all_of("conflicts")}
    assert "^kokkos+cuda" in conflicts
    assert conflicts["cuda_arch=none"]["when"] == "+cuda"


def test_run_environment_finds_the_installed_postprocess(Quopt):
    env = Env()
    Quopt(Spec(cuda=False, sanitizers=False), prefix="/opt/quopt").setup_run_environment(env)
    install = _cmake("cmake/QuoptInstall.cmake")
    datadir = re.search(r'set\(QUOPT_INSTALL_DATADIR "\$\{CMAKE_INSTALL_DATADIR\}/(\w+)"', install).group(1)
    assert re.search(r"install\(DIRECTORY postprocess/quopt_post DESTINATION \$\{QUOPT_INSTALL_DATADIR\}/postprocess",
                     install), "cmake/QuoptInstall.cmake no longer installs quopt_post where this test expects"
    assert env.prepended == [("PYTHONPATH", f"/opt/quopt/share/{datadir}/postprocess")]


# --- spack.yaml -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def env():
    return yaml.safe_load((REPO / "spack.yaml").read_text())["spack"]


def _definitions(env, environ):
    """The named spec lists, with `when` evaluated the way Spack does (a Python expression over
    platform, os, target, arch, arch_str, re, env, hostname; env is os.environ)."""
    names = {"platform": "linux", "os": "debian12", "target": "x86_64", "arch": None,
             "arch_str": "linux-debian12-x86_64", "re": re, "env": environ, "hostname": "node"}
    lists = {}
    for entry in env["definitions"]:
        entry = dict(entry)
        cond = entry.pop("when", None)
        ((name, specs),) = entry.items()
        assert isinstance(specs, list), f"definition {name} is not a list"
        assert all(isinstance(s, str) for s in specs), f"{name}: {specs} (quote every spec)"
        if cond is None or eval(cond, {"__builtins__": {}}, dict(names)):  # noqa: S307
            lists.setdefault(name, []).extend(specs)
        else:
            lists.setdefault(name, [])
    return lists


def _expanded_specs(env, environ):
    lists = _definitions(env, environ)
    out = []
    for s in env["specs"]:
        assert isinstance(s, str), f"spec {s!r} did not parse as a string (quote it)"
        out.extend(lists[s[1:]] if s.startswith("$") else [s])
    return out


def test_spack_yaml_cpu_and_cuda(env):
    with_cuda = {_name(s) for s in _expanded_specs(env, {})}
    cpu_only = {_name(s) for s in _expanded_specs(env, {"QUOPT_SPACK_CUDA": "0"})}
    assert {"cuda", "nccl"} <= with_cuda
    assert not {"cuda", "nccl"} & cpu_only


def test_spack_yaml_bounds_like_the_recipe(env, Quopt):
    """The environment and the package ask for the same versions and variants of every library both
    name, so that what one is tested with the other accepts."""
    recipe = {_name(s): s for s, when, t in _deps(Quopt) if when is None and t is None}
    roots = {_name(s): s for s in _expanded_specs(env, {"QUOPT_SPACK_CUDA": "0"})}
    shared = set(recipe) & set(roots)
    assert {"mpi", "hdf5", "kokkos", "sentencepiece", "toml11", "cli11", "nlohmann-json", "pcre2",
            "xxhash", "sleef"} <= shared
    for name in shared:
        assert roots[name] == recipe[name], f"spack.yaml '{roots[name]}' != recipe '{recipe[name]}'"


def test_spack_yaml_leaves_mpi_and_slurm_to_the_site(env):
    packages = env["packages"]
    assert packages["slurm"]["buildable"] is False
    # A prefer: on Open MPI made Spack 1.1 build MPICH instead of reusing the site's Open MPI.
    assert "openmpi" not in packages
    assert "mpi" in {_name(s) for s in _expanded_specs(env, {})}, "the root spec is the virtual mpi"
    for name, settings in packages.items():
        for key in ("prefer", "require"):
            for entry in settings.get(key, []):
                text = entry if isinstance(entry, str) else entry["spec"]
                assert isinstance(text, str) and text.strip(), f"{name}: {key}: {entry!r}"
    assert env["concretizer"]["unify"] is True
    assert env["view"]
