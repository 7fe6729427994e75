"""Shared by the Python tests: the project's fixtures, the evaluation data beside the
project (skipped with a reason when absent), the CLI binary, exiftool, and a helper that
builds a small archive folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "fixtures"
SHARED = ROOT.parent / "shared" / "data"
STRUCTURE = {
    line.strip()
    for line in (ROOT / "crates/phiscrub-cli/tests/common/exiftool-structure.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}


def cli() -> Path:
    """The phiscrub binary the Rust tests built (PHISCRUB_BIN overrides)."""
    p = Path(os.environ.get("PHISCRUB_BIN", ROOT / "target/debug/phiscrub"))
    if not p.exists():
        pytest.fail(f"{p} is missing: run `cargo build -p phiscrub-cli` first")
    return p


def shared(sub: str) -> Path:
    p = SHARED / sub
    if not p.is_dir():
        pytest.skip(f"{p} is absent (evaluation data lives beside the project)")
    return p


def images(folder: Path) -> List[Path]:
    exts = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".heic", ".heif"}
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in exts)


def exiftool_leftovers(paths: List[Path]) -> Dict[str, List[str]]:
    """Per file, every tag exiftool finds that is neither file structure nor bookkeeping."""
    out = subprocess.run(
        ["exiftool", "-j", "-a", "-G1", "-u", "-ee3", "-api", "RequestAll=3", *map(str, paths)],
        capture_output=True,
        check=False,
    )
    left = {}
    for obj in json.loads(out.stdout):
        keys = [
            f"{k}={v}"
            for k, v in obj.items()
            if k != "SourceFile"
            and k.split(":")[0] not in ("System", "File", "Composite")
            and not (k.startswith("ExifTool:") and not k.endswith((":Warning", ":Error")))
            and k not in STRUCTURE
        ]
        if keys:
            left[obj["SourceFile"]] = keys
    return left


def make_archive(root: Path, with_shared: bool = True) -> Path:
    """A folder of the fixture photos, clinical photos and broken files (a sub-folder with a
    space in its name among them) plus, when present, a sample of the evaluation data."""
    src = root / "src"
    shutil.copytree(FIXTURES / "photos", src / "photos")
    shutil.copytree(FIXTURES / "clinical", src / "bed 4")
    shutil.copytree(FIXTURES / "bad", src / "bad")
    (src / "bad" / "bomb_100000x100000.png").unlink()
    # Names Spark's file sources hide: recorded as failed, never silently left out.
    shutil.copy(FIXTURES / "photos/chart_comment.gif", src / "photos" / "_draft.gif")
    # A folder with such a name is fine: only a file's own name is hidden.
    (src / "_ward").mkdir()
    shutil.copy(FIXTURES / "photos/wound_exif_xmp.webp", src / "_ward" / "wound.webp")
    if with_shared and SHARED.is_dir():
        sample = src / "shared"
        sample.mkdir()
        picks = sorted((SHARED / "metadata/gps").glob("*.jpg"))[:3]
        picks += sorted((SHARED / "metadata/camera").glob("*.jpg"))[:2]
        picks += sorted((SHARED / "faces").glob("*.jpg"))[:3]
        for p in picks:
            shutil.copy(p, sample / p.name)
    return src
