"""h5py reads the files quopt's H5File writes, and H5File reads files h5py writes.

Drives the C++ test executable test_h5file (its H5FileInterop tests, which are skipped unless
QUOPT_H5_INTEROP_FILE is set). The executable is taken from $QUOPT_TEST_H5FILE, or else the newest
build/*/tests/test_h5file in the repository; the tests are skipped when there is none or when h5py is
not installed. Expected values are computed here from the same formulas, not read from quopt.
"""

import os
import subprocess
from pathlib import Path

import pytest

h5py = pytest.importorskip("h5py")
np = pytest.importorskip("numpy")

REPO = Path(__file__).resolve().parents[2]


def _test_binary():
    env = os.environ.get("QUOPT_TEST_H5FILE")
    if env:
        return Path(env)
    found = sorted(REPO.glob("build/*/tests/test_h5file"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _run(test, path):
    exe = _test_binary()
    if exe is None or not exe.exists():
        pytest.skip("test_h5file not built (set QUOPT_TEST_H5FILE or build it under build/)")
    env = dict(os.environ, QUOPT_H5_INTEROP_FILE=str(path))
    proc = subprocess.run([str(exe), f"--gtest_filter=H5FileInterop.{test}"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[  PASSED  ] 1 test" in proc.stdout, proc.stdout  # ran, not skipped or filtered out
    assert "SKIPPED" not in proc.stdout, proc.stdout


def test_h5py_reads_quopt_file(tmp_path):
    path = tmp_path / "from_quopt.h5"
    _run("WriteFileForPython", path)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "quopt-interop \u00b5"  # variable-length UTF-8 -> str
        assert isinstance(f.attrs["format"], str)
        assert f.attrs["seed"] == 1234567890123
        assert f.attrs["lr"] == 3e-4
        np.testing.assert_array_equal(f.attrs["dims"], [2, 3, 5])
        assert f.attrs["dims"].dtype == np.dtype("<i8")
        np.testing.assert_array_equal(f.attrs["betas"], [0.9, 0.95])

        assert sorted(f.keys()) == ["empty", "tokens", "weights"]
        assert list(f["weights/layer0"].keys()) == ["s", "w"]
        w = f["weights/layer0/w"]
        assert w.dtype == np.dtype("<f4") and w.shape == (3, 4)
        expected = (0.5 * np.arange(12, dtype=np.float32) - 1.0).reshape(3, 4)
        np.testing.assert_array_equal(w[()], expected)
        assert w.attrs["role"] == "hidden"

        s = f["weights/layer0/s"]
        assert s.shape == () and s.dtype == np.dtype("<f8")
        assert s[()] == 2.718281828459045

        t = f["tokens"]
        assert t.dtype == np.dtype("<i4")
        i = np.arange(5)
        np.testing.assert_array_equal(t[()], i * i - 3)

        e = f["empty"]
        assert e.shape == (0, 3) and e.dtype == np.dtype("<f4")


def test_quopt_reads_h5py_file(tmp_path):
    path = tmp_path / "from_h5py.h5"
    with h5py.File(path, "w") as f:
        f.attrs["name"] = "h5py \u00e9"
        f.attrs["step"] = np.int64(7)
        f.attrs["loss"] = 0.125
        f.attrs["shape"] = np.array([4, 2], dtype=np.int64)
        f["x"] = (0.5 * np.arange(8, dtype=np.float32) - 1.0).reshape(4, 2)
        i = np.arange(5, dtype=np.int32)
        f["ids"] = i * i - 3
    _run("ReadFileFromPython", path)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-v"]))
