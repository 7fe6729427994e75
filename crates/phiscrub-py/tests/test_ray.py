"""phiscrub.ray on a real local Ray (2 CPUs): fixtures and a sample of the evaluation
data, a kill midway, a resume, and the manifest and outputs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from archive_checks import kill_resume_rerun
from conftest import make_archive

pytest.importorskip("ray")


@pytest.fixture(autouse=True)
def no_ray_left_behind():
    yield
    # A killed driver's local cluster is stopped, as an operator would after a crash.
    subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "stop", "--force"], capture_output=True)


def test_a_killed_ray_job_resumes_and_does_each_input_exactly_once(tmp_path):
    src = make_archive(tmp_path)
    dst, manifest = tmp_path / "dst", tmp_path / "manifest"
    cmd = [sys.executable, "-m", "phiscrub.ray", str(src), str(dst), "--manifest", str(manifest)]
    cmd += ["--cpus", "2", "--chunk-files", "4"]
    rows = kill_resume_rerun(cmd, src, dst, manifest)

    # Ray reads the files the driver lists, hidden names too.
    draft = next(r for r in rows if r["input"].endswith("/_draft.gif"))
    assert draft["status"] == "scrubbed"
