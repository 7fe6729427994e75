"""Checks shared by the Spark and Ray tests: a run killed midway and resumed leaves every
input recorded exactly once, every scrubbed output in place once, and nothing else."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pyarrow.dataset as ds

from conftest import exiftool_leftovers, images


def manifest_rows(manifest: Path) -> List[Dict]:
    if not manifest.exists():
        return []
    return ds.dataset(str(manifest), format="parquet").to_table().to_pylist()


def committed_parts(manifest: Path) -> int:
    if not manifest.is_dir():
        return 0
    return sum(1 for p in manifest.iterdir() if p.name.startswith("part-") and p.suffix == ".parquet")


def run_and_kill(cmd: List[str], manifest: Path, env: Dict[str, str], timeout: float = 300) -> None:
    """Starts ``cmd`` in its own session and kills the whole session (driver, JVM, workers)
    once the manifest holds its first committed chunk."""
    p = subprocess.Popen(
        cmd, start_new_session=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    started = time.monotonic()
    while committed_parts(manifest) < 1:
        if p.poll() is not None:
            raise AssertionError(f"ended before the kill: {p.stdout.read().decode()[-3000:]}")
        assert time.monotonic() - started < timeout, "no chunk committed"
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()


def run(cmd: List[str], env: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)


def to_local(path: str) -> Path:
    return Path(path[len("file:") :] if path.startswith("file:") else path)


def check_exactly_once(src: Path, dst: Path, rows: List[Dict], rows_before_resume: int) -> None:
    assert 0 < rows_before_resume < len(rows), (rows_before_resume, len(rows))
    by_input: Dict[str, List[Dict]] = {}
    for r in rows:
        by_input.setdefault(str(to_local(r["input"])), []).append(r)
    expected = {str(p) for p in images(src)}
    assert set(by_input) == expected, set(by_input) ^ expected
    dup = {k: len(v) for k, v in by_input.items() if len(v) != 1}
    assert not dup, f"recorded more than once: {dup}"

    scrubbed = [r for r in rows if r["status"] == "scrubbed"]
    failed = [r for r in rows if r["status"] == "failed"]
    written = sorted(p for p in dst.rglob("*") if p.is_file())
    assert written == sorted(to_local(r["output"]) for r in scrubbed), "outputs on disk differ"
    assert not [p for p in dst.rglob(".*")], "temporary files left"
    for r in scrubbed:
        out = to_local(r["output"]).read_bytes()
        inp = to_local(r["input"])
        assert hashlib.sha256(out).hexdigest() == r["sha256_out"]
        assert hashlib.sha256(inp.read_bytes()).hexdigest() == r["sha256_in"]
        assert r["size"] == inp.stat().st_size
        assert r["route"] in ("lossless", "reencoded")
        assert set(dict(r["models"])) == {"centerface", "ppocr_det", "ppocr_rec", "yunet"}
        assert r["version"] and r["duration_ms"] > 0 and r["code"] is None
        rel = inp.relative_to(src)
        assert to_local(r["output"]).relative_to(dst).parts[:-1] == rel.parts[:-1]

    # The broken files failed with their codes and have no output.
    codes = {to_local(r["input"]).name: r["code"] for r in failed}
    assert codes.get("truncated.jpg") == "malformed"
    assert codes.get("empty.jpg") == "empty"
    assert all(r["output"] is None and r["sha256_out"] is None for r in failed)
    assert not list(dst.rglob("truncated*"))

    # The wristband's code and text were covered and counted.
    wrist = next(r for r in rows if r["input"].endswith("wristband.jpg"))
    assert wrist["text"] >= 1 and wrist["barcodes"] >= 1

    # exiftool finds nothing but file structure in any output, and the orientation that the
    # lossless JPEG route keeps as the only EXIF tag.
    left = exiftool_leftovers([to_local(r["output"]) for r in scrubbed])
    left = {f: [t for t in tags if not t.startswith("IFD0:Orientation=")] for f, tags in left.items()}
    assert {f: tags for f, tags in left.items() if tags} == {}


def python_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    return env


def kill_resume_rerun(
    cmd: List[str], src: Path, dst: Path, manifest: Path, after_kill=lambda: None
) -> List[Dict]:
    """Runs an archive job killed at its first committed chunk, then to the end, then once
    more; checks each step and returns the manifest's rows. Between the kill and the
    resume, a temporary output file is left as a kill mid-write leaves one, and
    ``after_kill`` may leave more."""
    env = python_env()
    run_and_kill(cmd, manifest, env)
    before = len(manifest_rows(manifest))
    (dst / "photos").mkdir(parents=True, exist_ok=True)
    (dst / "photos" / ".phiscrub-0123456789abcdef0123456789abcdef.part").write_bytes(b"\xff\xd8")
    after_kill()
    done = run(cmd, env)
    assert done.returncode == 1, done.stdout + done.stderr  # the broken files failed
    assert f"{before} already in the manifest" in done.stdout, done.stdout + done.stderr
    rows = manifest_rows(manifest)
    check_exactly_once(src, dst, rows, before)
    # A rerun finds everything done and starts nothing.
    again = run(cmd, env)
    assert "0 done in this run" in again.stdout, again.stdout + again.stderr
    assert len(manifest_rows(manifest)) == len(rows)
    return rows
