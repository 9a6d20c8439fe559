"""`pip install ./python`: builds the engine and the scb._scb module through the repository's
CMake project (the same options as the CLI build: CUDA when nvcc is found), in <repo>/build-python
so that a second install only rebuilds what changed, and ships the module inside the package."""
import os
import pathlib
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REPO = pathlib.Path(__file__).resolve().parent.parent


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = pathlib.Path(os.environ.get("SCB_PYTHON_BUILD_DIR", REPO / "build-python"))
        # An existing build folder (SCB_PYTHON_BUILD_DIR=build) keeps its own options.
        if not (build / "CMakeCache.txt").exists():
            subprocess.run(["cmake", "-S", str(REPO), "-B", str(build), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                            f"-DPython_EXECUTABLE={sys.executable}", "-DSCB_BUILD_TESTS=OFF",
                            "-DSCB_BUILD_BENCH=OFF"], check=True)
        subprocess.run(["cmake", "--build", str(build), "--target", "_scb", "--parallel", str(os.cpu_count() or 1)],
                       check=True)
        built = next((REPO / "python" / "scb").glob("_scb*.so"))
        target = pathlib.Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)


setup(ext_modules=[Extension("scb._scb", sources=[])], cmdclass={"build_ext": CMakeBuild})
