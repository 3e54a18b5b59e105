"""Build fastfl._C through CMake; all metadata lives in pyproject.toml.

FASTFL_BUILD_NATIVE=0 skips the extension (fastfl then runs on its numba backend);
FASTFL_DEBUG=1 builds it without optimisation; FASTFL_CMAKE_ARGS adds arguments to cmake,
e.g. FASTFL_CMAKE_ARGS=-DFASTFL_NATIVE_ARCH=ON.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent.resolve()


def _tool(module: str, attr: str, name: str) -> str | None:
    """The pip-installed cmake/ninja when present (a venv's bin may not be on PATH), else PATH's."""
    try:
        return str(Path(getattr(__import__(module), attr)) / name)
    except (ImportError, AttributeError):
        return shutil.which(name)


class CMakeBuild(build_ext):
    """Configure and build one CMake project per extension, writing the module into the package."""

    def build_extension(self, ext: Extension) -> None:
        """Run cmake configure and build for `ext` (Release unless debugging)."""
        import pybind11

        out_dir = Path(self.get_ext_fullpath(ext.name)).parent.resolve()
        build_dir = Path(self.build_temp).resolve() / ext.name
        build_dir.mkdir(parents=True, exist_ok=True)
        cfg = "Debug" if self.debug or os.environ.get("FASTFL_DEBUG") == "1" else "Release"
        cmake = _tool("cmake", "CMAKE_BIN_DIR", "cmake") or "cmake"
        args = [f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}", f"-DCMAKE_BUILD_TYPE={cfg}"]
        args += [f"-DPython_EXECUTABLE={sys.executable}", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}"]
        ninja = _tool("ninja", "BIN_DIR", "ninja")
        if ninja and not (build_dir / "CMakeCache.txt").exists():
            args += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
        args += os.environ.get("FASTFL_CMAKE_ARGS", "").split()
        subprocess.run([cmake, str(ROOT), *args], cwd=build_dir, check=True)
        subprocess.run([cmake, "--build", ".", "--config", cfg, "--parallel"], cwd=build_dir, check=True)


native = os.environ.get("FASTFL_BUILD_NATIVE", "1") != "0"
setup(ext_modules=[Extension("fastfl._C", sources=[])] if native else [], cmdclass={"build_ext": CMakeBuild})
