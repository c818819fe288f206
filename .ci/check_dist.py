"""What the built sdist and wheel must (and must not) hold; prints their sizes and the wheel's files."""

from __future__ import annotations

import re
import sys
import tarfile
import zipfile
from pathlib import Path

dist = Path(sys.argv[1])
wheel = next(dist.glob("*.whl"))
sdist = next(dist.glob("*.tar.gz"))
names = zipfile.ZipFile(wheel).namelist()
info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
need = [
    "napari_resjnd/__init__.py",
    "napari_resjnd/napari.yaml",  # the manifest napari reads
    f"{info}/licenses/LICENSE",
    f"{info}/licenses/WEIGHTS.md",  # the weights' own terms, apart from the code's licence
    f"{info}/entry_points.txt",
]
missing = [n for n in need if n not in names]
banned = [n for n in names if n.endswith((".pth", ".pt", ".ckpt", ".safetensors", ".bmp", ".pyc")) or "/tests/" in n]
entry = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
metadata = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
problems = []
if missing:
    problems.append(f"wheel lacks {missing}")
if banned:
    problems.append(f"wheel holds files it must not: {banned}")
if "napari-resjnd = napari_resjnd:napari.yaml" not in entry:
    problems.append("wheel has no napari.manifest entry point")
for dep in ("magicgui", "qtpy", "superqt", "pyqtgraph", "psygnal"):
    if f"Requires-Dist: {dep}" not in metadata:
        problems.append(f"{dep} is not an ordinary requirement (napari's plugin manager installs no extras)")
for line in metadata.splitlines():
    if line.startswith("Requires-Dist:") and "extra ==" not in line:
        name = re.split(r"[<>=!~;\[ ]", line.split(":", 1)[1].strip(), maxsplit=1)[0].lower()
        if name in {"napari", "pyqt5", "pyqt6", "pyside2", "pyside6"}:
            problems.append(f"napari and Qt bindings stay out of the core requirements: {line}")
        if name in {"openvino", "nncf"}:
            problems.append(f"the int8 backend (about 180 MB) stays in the [int8] extra: {line}")
if "Provides-Extra: int8" not in metadata:
    problems.append("no [int8] extra in the metadata")
with tarfile.open(sdist) as tf:
    snames = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
for n in (
    "LICENSE",
    "WEIGHTS.md",
    "CHANGELOG.md",
    "CITATION.cff",
    "README.md",
    "napari.yaml",
    "src/napari_resjnd/napari.yaml",
):
    if n not in snames:
        problems.append(f"sdist lacks {n}")
print(f"{wheel.name}: {wheel.stat().st_size / 1024:.1f} KiB, {len(names)} files")
print(f"{sdist.name}: {sdist.stat().st_size / 1024:.1f} KiB, {len(snames)} files")
for n in sorted(names):
    print("  ", n)
if problems:
    sys.exit("release check failed: " + "; ".join(problems))
print("dist: ok")
