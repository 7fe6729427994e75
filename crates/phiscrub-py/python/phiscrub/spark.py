"""Scrub an image archive with Apache Spark, resumably, with a Parquet audit manifest.

    python -m phiscrub.spark SRC DST --manifest M [--master local[2]]

or, on a cluster, ``spark-submit --py-files ... -m phiscrub.spark`` (see the README), or from
a notebook::

    from phiscrub.spark import scrub_archive
    summary = scrub_archive(spark, "s3://ward/photos", "s3://ward/scrubbed", "s3://ward/manifest")

How it runs:

- The driver lists SRC recursively (pyarrow's file systems: local and mounted folders, S3,
  GCS, HDFS) and keeps names ending in an image extension. Spark's own file listing is not
  used for this: it silently drops empty files and file names beginning with ``_`` or ``.``, and
  an archive's photo must not go missing unsaid. Such files get a failed record instead.
- Inputs the manifest already holds are removed by an anti-join on the path: a rerun after
  a crash or a kill does only what is left.
- What is left is done in chunks (``chunk_files`` inputs per Spark job; default 32 per
  worker slot, at least 64), each read with
  ``binaryFile`` and scrubbed with ``mapInArrow``. Every Python worker loads the models once
  (one Scrubber per worker) with ``spark.task.cpus`` ONNX Runtime threads, so the threads in
  use match the cores Spark gave the executor.
- Each output is written under DST at its input's path relative to SRC, through a
  temporary name: a retried task writes the same bytes to the same name.
- Each chunk's records are appended to the Parquet manifest by Spark's own commit, so the
  manifest only ever holds inputs whose outputs are in place.

SRC and DST are local paths (shared or mounted folders, such as ``/dbfs/...``) or URIs that
both Spark and pyarrow open (``s3://``, ``gs://``, ``hdfs://``); executors write outputs
with pyarrow.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Dict, Iterator, Mapping, Optional

from . import Scrubber
from ._archive import (
    MANIFEST_COLUMNS,
    MANIFEST_DDL,
    Folder,
    chunk_size,
    chunks,
    command_line,
    report,
    scrub_rows,
    separate,
    to_batch,
)

#: Photos handed to Python per Arrow batch: bounds a worker's memory to a few photos.
RECORDS_PER_BATCH = 8


def _hadoop(spark, path: str):
    """``path`` as a Hadoop path, with the file system Spark reads it through."""
    p = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
    return p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), p


def _qualified(spark, path: str) -> str:
    """``path`` as Spark spells file paths (``file:/...`` for a local one)."""
    fs, p = _hadoop(spark, path)
    return fs.makeQualified(p).toString()


def _exists(spark, path: str) -> bool:
    fs, p = _hadoop(spark, path)
    return fs.exists(p)


def _delete(spark, path: str) -> None:
    fs, p = _hadoop(spark, path)
    fs.delete(p, True)


def _glob_escaped(path: str) -> str:
    """A file path that Spark's loader, which reads paths as globs, matches literally."""
    for ch in "\\{}[]*?":
        path = path.replace(ch, "\\" + ch)
    return path


@contextlib.contextmanager
def _session_conf(spark, settings: Mapping[str, str]):
    """Sets Spark SQL settings for the run and puts the caller's back afterwards."""
    before = {k: spark.conf.get(k, None) for k in settings}
    for k, v in settings.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def _scrub_partition(
    batches: Iterator[Any], options: Mapping[str, Any], src_root: str, dst: str
) -> Iterator[Any]:
    """Runs on an executor: one Scrubber per Python worker (cached per process), ONNX Runtime
    threads set to the task's CPUs."""
    from pyspark import TaskContext

    opts = dict(options)
    ctx = TaskContext.get()
    if "threads" not in opts and not opts.get("metadata_only"):
        opts["threads"] = max(1, int(ctx.cpus())) if ctx is not None else 1
    scrubber = Scrubber(**opts)
    out = Folder(dst)
    for batch in batches:
        rows = scrub_rows(
            scrubber,
            batch.column("path").to_pylist(),
            batch.column("content").to_pylist(),
            src_root,
            out,
        )
        yield to_batch(rows)


def scrub_archive(
    spark,
    src: str,
    dst: str,
    manifest: str,
    *,
    options: Optional[Mapping[str, Any]] = None,
    chunk_files: Optional[int] = None,
    retry_failed: bool = False,
) -> Dict[str, int]:
    """Scrubs every image under ``src`` into ``dst``, appending one record per input to the
    Parquet manifest at ``manifest``, and skipping inputs the manifest already holds
    (failed ones too, unless ``retry_failed``). ``options`` are :class:`phiscrub.Scrubber`'s.

    Returns the counts for the images under ``src`` once the run ends: ``scrubbed``,
    ``failed``, ``skipped`` (by status, over the whole manifest), ``done_before`` (held by
    the manifest when the run started) and ``this_run``.
    """
    options = dict(options or {})
    Scrubber(**options)  # a bad option fails here, before any job starts
    settings = {
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(RECORDS_PER_BATCH),
        # Several tasks per core, so that a core left with one slow photo is not the end.
        "spark.sql.files.minPartitionNum": str(4 * spark.sparkContext.defaultParallelism),
    }
    with _session_conf(spark, settings):
        return _scrub_archive(spark, src, dst, manifest, options, chunk_files, retry_failed)


def _driver_record(scrubber: Scrubber, path: str, rel: str, size: int) -> Dict[str, Any]:
    """The record of an input Spark's file sources cannot read: an empty file (which they
    drop) fails as ``empty``; a file name beginning with ``_`` or ``.`` (which they hide)
    fails as ``unsupported``. Nothing under SRC is left out of the manifest unsaid."""
    _, record = scrubber._record(path, rel, b"")
    if size > 0:
        record.update(
            code="unsupported",
            reason="Spark's file sources do not read file names beginning with '_' or '.'; "
            "scrub this file with the phiscrub command",
            size=size,
            sha256_in=None,
        )
    record["output"] = None
    return record


def _scrub_archive(spark, src, dst, manifest, options, chunk_files, retry_failed):
    from pyspark.sql import functions as F

    src_root = _qualified(spark, src)
    src_folder, out_root = Folder(src), Folder(dst)
    separate(src_folder, out_root, Folder(manifest))
    # What a killed run was writing when it died: outputs' temporary files, and the
    # manifest's staging folder, whose task files the next commit would otherwise take in
    # beside the rows this run makes for the same inputs.
    out_root.remove_stale_parts()
    _delete(spark, f"{manifest.rstrip('/')}/_temporary")
    chunk_files = chunk_size(chunk_files, spark.sparkContext.defaultParallelism)
    # Listed by the driver, not by a Spark file source, which silently drops empty files
    # and file names beginning with "_" or "." (an archive's photo among them would be missed).
    listed = src_folder.list_images()
    listing = spark.createDataFrame(
        [(f"{src_root}/{rel}", rel, size) for rel, size in listed],
        "path string, rel string, size bigint",
    )
    todo = listing
    if _exists(spark, manifest):
        done = spark.read.parquet(manifest)
        if retry_failed:
            done = done.where(F.col("status") != "failed")
        done = done.select(F.col("input").alias("path")).distinct()
        todo = listing.join(done, "path", "left_anti")
    todo_rows = sorted(todo.collect())
    readable = [r.path for r in todo_rows if _spark_reads(r.rel, r.size)]
    unreadable = [r for r in todo_rows if not _spark_reads(r.rel, r.size)]
    if unreadable:
        scrubber = Scrubber(metadata_only=True)
        rows = [_driver_record(scrubber, r.path, r.rel, r.size) for r in unreadable]
        values = [tuple(r.get(name) for name, _ in MANIFEST_COLUMNS) for r in rows]
        spark.createDataFrame(values, MANIFEST_DDL).write.mode("append").parquet(manifest)
    for chunk in chunks(readable, chunk_files):
        frame = spark.read.format("binaryFile").load([_glob_escaped(p) for p in chunk])
        records = frame.select("path", "content").mapInArrow(
            lambda it: _scrub_partition(it, options, src_root, dst), MANIFEST_DDL
        )
        records.write.mode("append").parquet(manifest)
    summary = {"scrubbed": 0, "failed": 0, "skipped": 0}
    if _exists(spark, manifest):
        counted = (
            spark.read.parquet(manifest)
            .join(listing.select(F.col("path").alias("input")), "input", "left_semi")
            .groupBy("status")
            .count()
            .collect()
        )
        summary.update({r["status"]: r["count"] for r in counted})
    summary["done_before"] = len(listed) - len(todo_rows)
    summary["this_run"] = len(todo_rows)
    return summary


def _spark_reads(rel: str, size: int) -> bool:
    """Whether Spark's file sources read this file: they drop empty files, and hide those
    whose own name (not their folders', when the file is named in full, as here) begins
    with ``_`` or ``.``."""
    return size > 0 and not rel.rsplit("/", 1)[-1].startswith(("_", "."))


def main() -> int:
    def extra(parser):
        parser.add_argument("--master", help="Spark master (default: spark-submit's)")

    args, options = command_line("spark", extra)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("phiscrub")
    # Started by plain python rather than spark-submit: Spark runs here, local[*] unless
    # --master says otherwise.
    plain = "PYSPARK_GATEWAY_PORT" not in os.environ
    master = args.master or ("local[*]" if plain else None)
    if master:
        builder = builder.master(master)
    if plain and master.startswith("local") and "PYSPARK_PYTHON" not in os.environ:
        # Local workers run this interpreter, the one phiscrub is installed in.
        builder = builder.config("spark.pyspark.python", sys.executable)
    spark = builder.getOrCreate()
    try:
        summary = scrub_archive(
            spark,
            args.src,
            args.dst,
            args.manifest,
            options=options,
            chunk_files=args.chunk_files,
            retry_failed=args.retry_failed,
        )
    finally:
        spark.stop()
    return report(summary)


if __name__ == "__main__":
    sys.exit(main())
