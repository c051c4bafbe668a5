"""Builds luigi_node: libluigi.so (Swift, via `make lib`) plus the CPython
extension luigi_node._luigi, and ships the library inside the package.

Where libluigi.so comes from:
  * $LUIGI_LIBRARY, when it names an existing file (the Makefile's `venv`
    target passes the one it just built);
  * otherwise `make lib` at the repository root, which produces
    .build/release/libluigi.so (needs the Swift toolchain).

The library is copied next to the extension, luigi.h into
luigi_node/include/, and the extension is linked with -lluigi and an
$ORIGIN rpath, so the installed package needs nothing outside itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import List

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
PACKAGE = "luigi_node"
PACKAGE_SOURCE = Path("bindings") / "python" / PACKAGE
# The extension's C files (one job each; _luigi.h is their shared header).
EXTENSION_SOURCES = [
    "_luigi_common",
    "_luigi_clock",
    "_luigi_update",
    "_luigi_replica",
    "_luigi_cluster",
    "_luigi_raft",
    "_luigi_raft_cluster",
    "_luigi_meta",
    "_luigi_watermark",
    "_luigi_sharded",
    "_luigi_wm_roles",
    "_luigi_client",
    "_luigi_module",
]


def locate_library() -> Path:
    env = os.environ.get("LUIGI_LIBRARY")
    if env:
        path = Path(env)
        if path.is_file():
            return path.resolve()
        print(f"LUIGI_LIBRARY={env} is not a file; building libluigi.so with `make lib`")
    subprocess.run(["make", "lib"], cwd=ROOT, check=True)
    built = ROOT / ".build" / "release" / "libluigi.so"
    if not built.is_file():
        raise RuntimeError(f"`make lib` succeeded but {built} does not exist")
    return built


class BuildExt(build_ext):
    """build_ext that first puts libluigi.so and luigi.h into the package."""

    def run(self) -> None:
        library = locate_library()
        if self.inplace:
            package_dir = ROOT / PACKAGE_SOURCE
        else:
            package_dir = Path(self.build_lib) / PACKAGE
        (package_dir / "include").mkdir(parents=True, exist_ok=True)
        self._shipped = [package_dir / "libluigi.so", package_dir / "include" / "luigi.h"]
        shutil.copyfile(library, self._shipped[0])
        shutil.copyfile(ROOT / "Include" / "luigi.h", self._shipped[1])
        for ext in self.extensions:
            # Link against the copy that ships, found at run time via $ORIGIN.
            ext.library_dirs = [str(package_dir)]
        super().run()

    def get_outputs(self) -> List[str]:
        return super().get_outputs() + [str(p) for p in getattr(self, "_shipped", [])]


setup(
    ext_modules=[
        Extension(
            f"{PACKAGE}._luigi",
            sources=[str(PACKAGE_SOURCE / f"{name}.c") for name in EXTENSION_SOURCES],
            depends=[str(PACKAGE_SOURCE / "_luigi.h")],
            include_dirs=["Include"],
            libraries=["luigi"],
            runtime_library_dirs=["$ORIGIN"],
            extra_compile_args=["-Wall", "-Wextra", "-Werror"],
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
