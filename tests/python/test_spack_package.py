"""The Spack files without Spack: spack.yaml is valid YAML with the environment quopt needs, and
spack/packages/quopt/package.py, imported against a small stub of the spack.package API, declares the
variants and dependencies quopt needs and maps its variants onto the CMake options CMakeLists.txt
defines.

The stub implements only what the recipe uses: the directives (version, variant, depends_on,
conflicts) record their arguments on the class, CMakePackage.define/define_from_variant format
arguments the way Spack documents them ("-DNAME:BOOL=ON", "-DNAME:STRING=a;b"), and a Spec knows its
variants. Expected values are written out here from the CMake files and the Spack documentation, not
read back from the recipe.
"""

import importlib.util
import re
import sys
import types
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "spack" / "packages" / "quopt" / "package.py"
CUDA_ARCHS = ("70", "80", "90")  # a subset of CudaPackage.cuda_arch_values is enough here


# --- the stub of spack.package ------------------------------------------------------------------

class Variant:
    def __init__(self, value):
        self.value = value


class Spec:
    """Variants only: {"cuda": True, "tests": False, "cuda_arch": ("90",)}."""

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


def _directive(kind):
    def record(*args, **kwargs):
        _pending.append((kind, args, kwargs))
    return record


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

    def __init__(self, spec):
        self.spec = spec

    @staticmethod
    def define(name, value):
        if isinstance(value, bool):
            return f"-D{name}:BOOL={'ON' if value else 'OFF'}"
        if isinstance(value, (list, tuple)):
            return f"-D{name}:STRING={';'.join(str(v) for v in value)}"
        return f"-D{name}:STRING={value}"

    def define_from_variant(self, name, variant):
        return self.define(name, self.spec.variants[variant].value)


class CMakePackage(PackageBase):
    _directive("variants")("build_type", default="Release")


class CudaPackage(PackageBase):
    cuda_arch_values = CUDA_ARCHS
    _directive("variants")("cuda", default=False)
    _directive("variants")("cuda_arch", values=("none",) + CUDA_ARCHS, multi=True, when="+cuda")
    _directive("dependencies")("cuda", when="+cuda")


def _install_stub(monkeypatch, with_spack_repo):
    spack = types.ModuleType("spack")
    package = types.ModuleType("spack.package")
    names = {"version": "versions", "variant": "variants", "depends_on": "dependencies",
             "conflicts": "conflicts"}
    for fn, kind in names.items():
        setattr(package, fn, _directive(kind))
    package.__all__ = list(names)
    if not with_spack_repo:  # Spack 0.x: the build systems come from spack.package
        package.CMakePackage, package.CudaPackage = CMakePackage, CudaPackage
        package.__all__ += ["CMakePackage", "CudaPackage"]
    spack.package = package
    monkeypatch.setitem(sys.modules, "spack", spack)
    monkeypatch.setitem(sys.modules, "spack.package", package)
    for name in ["spack_repo", "spack_repo.builtin", "spack_repo.builtin.build_systems",
                 "spack_repo.builtin.build_systems.cmake", "spack_repo.builtin.build_systems.cuda"]:
        monkeypatch.delitem(sys.modules, name, raising=False)
    if with_spack_repo:  # Spack >= 1.0
        mods = {}
        for name in ["spack_repo", "spack_repo.builtin", "spack_repo.builtin.build_systems"]:
            mods[name] = types.ModuleType(name)
        cmake = types.ModuleType("spack_repo.builtin.build_systems.cmake")
        cmake.CMakePackage = CMakePackage
        cuda = types.ModuleType("spack_repo.builtin.build_systems.cuda")
        cuda.CudaPackage = CudaPackage
        mods[cmake.__name__], mods[cuda.__name__] = cmake, cuda
        for name, mod in mods.items():
            monkeypatch.setitem(sys.modules, name, mod)


def _load_recipe(monkeypatch, with_spack_repo=False):
    _install_stub(monkeypatch, with_spack_repo)
    spec = importlib.util.spec_from_file_location("quopt_spack_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Quopt


@pytest.fixture
def Quopt(monkeypatch):
    return _load_recipe(monkeypatch)


# --- the recipe ---------------------------------------------------------------------------------

def _deps(cls):
    """[(spec text, when or None, type or None)] of the depends_on directives."""
    return [(a[0], k.get("when"), k.get("type")) for a, k in cls.all_of("dependencies")]


def test_imports_with_both_spack_layouts(monkeypatch):
    for with_repo in (False, True):
        cls = _load_recipe(monkeypatch, with_spack_repo=with_repo)
        assert issubclass(cls, CMakePackage) and issubclass(cls, CudaPackage)


def test_repo_layout():
    repo = yaml.safe_load((REPO / "spack" / "repo.yaml").read_text())
    assert repo["repo"]["namespace"] == "quopt"
    assert RECIPE.is_file(), "Spack looks for <repo>/packages/<name>/package.py"


def test_variants(Quopt):
    variants = {a[0]: k for a, k in Quopt.all_of("variants")}
    assert "cuda" in variants and "cuda_arch" in variants, "CudaPackage's variants are inherited"
    assert variants["tests"].get("default") is False


def test_versions_fetch_from_the_checkout(Quopt):
    assert [a[0] for a, _ in Quopt.all_of("versions")] == ["main"]
    assert Quopt.git == "file://" + str(REPO)


def test_dependencies(Quopt):
    deps = _deps(Quopt)
    unconditional = {re.split(r"[@ +~]", s)[0]: s for s, when, _ in deps if when is None}
    for name in ["mpi", "hdf5", "kokkos", "openblas", "sentencepiece", "toml11", "cli11", "nlohmann-json", "pcre2",
                 "xxhash", "sleef", "cmake", "c", "cxx"]:
        assert name in unconditional, f"no unconditional depends_on('{name}...')"
    assert "+mpi" in unconditional["hdf5"], "parallel HDF5 is required (MPI-IO)"
    build_only = {s.split("@")[0] for s, when, t in deps if t == "build"}
    assert {"cmake", "c", "cxx"} <= build_only
    assert ("googletest", "+tests", None) in deps
    assert ("nccl", "+cuda", None) in deps
    assert any(s.startswith("cuda@12") and when == "+cuda" for s, when, _ in deps)


def test_cuda_arch_propagates_to_nccl(Quopt):
    deps = _deps(Quopt)
    for arch in CUDA_ARCHS:
        assert (f"nccl cuda_arch={arch}", f"+cuda cuda_arch={arch}", None) in deps, arch


def test_conflicts(Quopt):
    conflicts = {a[0]: k for a, k in Quopt.all_of("conflicts")}
    assert "^kokkos+cuda" in conflicts, "Kokkos must stay host-only (the GPU kernels are plain CUDA)"
    assert conflicts["cuda_arch=none"]["when"] == "+cuda"


def _cmake_options():
    """option(NAME ...) names in the top-level CMakeLists.txt."""
    return set(re.findall(r"^option\((\w+)", (REPO / "CMakeLists.txt").read_text(), re.M))


@pytest.mark.parametrize("cuda,tests,archs", [(False, False, ()), (True, True, ("90",)),
                                              (True, False, ("80", "90"))])
def test_cmake_args(Quopt, cuda, tests, archs):
    spec = Spec(cuda=cuda, tests=tests, cuda_arch=archs or ("none",))
    args = Quopt(spec).cmake_args()
    on = lambda b: "ON" if b else "OFF"  # noqa: E731
    assert f"-DQUOPT_ENABLE_CUDA:BOOL={on(cuda)}" in args
    assert f"-DQUOPT_ENABLE_TESTS:BOOL={on(tests)}" in args
    assert "-DQUOPT_ENABLE_SANITIZERS:BOOL=OFF" in args
    assert "-DQUOPT_NATIVE:BOOL=OFF" in args  # Spack sets the target flags from the spec
    assert "-DBLA_VENDOR:STRING=OpenBLAS" in args
    arch_args = [a for a in args if a.startswith("-DCMAKE_CUDA_ARCHITECTURES")]
    if cuda:
        assert arch_args == [f"-DCMAKE_CUDA_ARCHITECTURES:STRING={';'.join(archs)}"]
    else:
        assert arch_args == []
    # Every QUOPT_* the recipe sets is an option the project defines, and it sets all of them.
    set_names = {re.match(r"-D(\w+):", a).group(1) for a in args}
    assert {n for n in set_names if n.startswith("QUOPT_")} == _cmake_options()


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
        when = entry.pop("when", None)
        ((name, specs),) = entry.items()
        assert isinstance(specs, list), f"definition {name} is not a list"
        if when is None or eval(when, {"__builtins__": {}}, dict(names)):  # noqa: S307
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


def test_spack_yaml_specs_are_strings(env):
    for entry in env["definitions"]:
        for key, value in entry.items():
            if key != "when":
                assert all(isinstance(s, str) for s in value), f"{key}: {value}"


def test_spack_yaml_cpu_and_cuda(env):
    def names(specs):
        return {re.split(r"[@ +~]", s)[0] for s in specs}

    with_cuda = _expanded_specs(env, {})
    cpu_only = _expanded_specs(env, {"QUOPT_SPACK_CUDA": "0"})
    need = {"cmake", "kokkos", "openmpi", "hdf5", "openblas", "sentencepiece", "toml11", "cli11", "nlohmann-json", "pcre2",
            "xxhash", "sleef", "googletest"}
    assert need <= names(cpu_only), need - names(cpu_only)
    assert {"cuda", "nccl"} <= names(with_cuda)
    assert not {"cuda", "nccl"} & names(cpu_only)
    by_name = {re.split(r"[@ +~]", s)[0]: s for s in with_cuda}
    assert "cuda_arch=90" in by_name["nccl"]
    assert "+mpi" in by_name["hdf5"]
    assert "schedulers=slurm" in by_name["openmpi"] or "+pmi" in by_name["openmpi"]
    assert "~cuda" in by_name["kokkos"], "the recipe conflicts with a CUDA Kokkos"


def test_spack_yaml_settings(env):
    assert env["concretizer"]["unify"] is True
    assert env["view"], "a view makes the environment usable from CMake and the job scripts"
    assert env["packages"]["all"]["providers"]["mpi"][0] == "openmpi"
