"""phiscrub.spark on a real local Spark (local[2], Debian's OpenJDK 17): fixtures and a
sample of the evaluation data, a kill midway, a resume, and the manifest and outputs."""

from __future__ import annotations

import shutil
import sys

import pytest

from archive_checks import kill_resume_rerun, python_env, run
from conftest import make_archive

pytest.importorskip("pyspark")


def test_a_killed_spark_job_resumes_and_does_each_input_exactly_once(tmp_path):
    src = make_archive(tmp_path)
    dst, manifest = tmp_path / "dst", tmp_path / "manifest"
    cmd = [sys.executable, "-m", "phiscrub.spark", str(src), str(dst), "--manifest", str(manifest)]
    cmd += ["--master", "local[2]", "--chunk-files", "4"]

    def staged_but_not_committed():
        # A killed job's task files wait in _temporary for a job commit that never came;
        # the next commit must not take them in beside the resumed run's own rows.
        task = manifest / "_temporary/0/task_202612060000_0007_m_000000"
        task.mkdir(parents=True)
        part = next(manifest.glob("part-*.parquet"))
        shutil.copy(part, task / "part-00000-stale-c000.snappy.parquet")

    rows = kill_resume_rerun(cmd, src, dst, manifest, staged_but_not_committed)

    # A name Spark's file sources hide is recorded as failed, not silently left out.
    draft = next(r for r in rows if r["input"].endswith("/_draft.gif"))
    assert (draft["status"], draft["code"]) == ("failed", "unsupported")
    ward = next(r for r in rows if r["input"].endswith("/_ward/wound.webp"))
    assert ward["status"] == "scrubbed"

    # --retry-failed tries the failures again, and they fail again.
    retry = run(cmd + ["--retry-failed"], python_env())
    failed = sum(r["status"] == "failed" for r in rows)
    assert f"{failed} done in this run" in retry.stdout, retry.stdout


def test_the_spark_submit_example_runs(tmp_path):
    from pathlib import Path

    from conftest import FIXTURES, ROOT

    src = tmp_path / "src"
    shutil.copytree(FIXTURES / "photos", src)
    submit = Path(sys.executable).parent / "spark-submit"
    cmd = [str(submit), "--master", "local[2]", "--conf", f"spark.pyspark.python={sys.executable}"]
    cmd += [str(ROOT / "crates/phiscrub-py/examples/spark_job.py"), str(src), str(tmp_path / "dst")]
    cmd += ["--manifest", str(tmp_path / "m"), "--metadata-only"]
    done = run(cmd, python_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 scrubbed, 0 failed" in done.stdout, done.stdout
    assert len(list((tmp_path / "dst").rglob("*.*"))) == 5
