"""Scrub an image archive with Ray Data, resumably, with a Parquet audit manifest.

    python -m phiscrub.ray SRC DST --manifest M [--workers 2]

or from Python, on a Ray cluster already connected::

    from phiscrub.ray import scrub_archive
    summary = scrub_archive("s3://ward/photos", "s3://ward/scrubbed", "s3://ward/manifest")

How it runs:

- The driver lists SRC recursively (pyarrow's file systems: local, S3, GCS, HDFS) and keeps
  names ending in an image extension, then drops the inputs the manifest already holds.
- What is left goes in chunks (``chunk_files`` inputs each; default 32 per actor, at least
  64) through ``read_binary_files`` and
  ``map_batches`` over a pool of ``workers`` actors, each holding one Scrubber.
- Ray schedules by CPU: actors that each ask for a whole CPU, as many as there are CPUs,
  leave none for the tasks that read the files, and the pipeline stalls. So the read tasks
  ask for a quarter CPU, and each actor for its share of what is left (at most one), which
  keeps every core scrubbing and the reads flowing on a 2-core machine as on a large one.
- Each output is written under DST at its input's path relative to SRC, through a
  temporary name. Each chunk's records are written by the driver as one Parquet file in
  the manifest folder, moved into place whole, after its outputs are in place.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any, Dict, Mapping, Optional

from . import Scrubber
from ._archive import (
    Folder,
    chunk_size,
    chunks,
    command_line,
    done_inputs,
    manifest_schema,
    report,
    scrub_rows,
    separate,
    to_batch,
)

#: CPU asked by each file-reading task.
READ_CPUS = 0.25

#: Photos per batch handed to an actor.
BATCH_SIZE = 4


class _ScrubActor:
    """One pool worker: a Scrubber loaded once, writing outputs as batches arrive."""

    def __init__(self, options: Mapping[str, Any], src_root: str, dst: str) -> None:
        self.scrubber = Scrubber(**options)
        self.src_root = src_root
        self.out = Folder(dst)

    def __call__(self, batch):
        import pyarrow as pa

        rows = scrub_rows(
            self.scrubber,
            batch.column("path").to_pylist(),
            batch.column("bytes").to_pylist(),
            self.src_root,
            self.out,
        )
        return pa.Table.from_batches([to_batch(rows)])


def _read_manifest(root: Folder):
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    if root.fs.get_file_info(root.base).type == pafs.FileType.NotFound:
        return None
    # Files whose names start with "." or "_" (ours in flight) are left out by pyarrow.
    return ds.dataset(root.base, filesystem=root.fs, format="parquet").to_table()


def _write_manifest(root: Folder, table) -> None:
    import pyarrow.parquet as pq

    root.fs.create_dir(root.base, recursive=True)
    name = f"part-{uuid.uuid4().hex}.parquet"
    temp = root.temporary(root.base)
    with root.fs.open_output_stream(temp) as f:
        pq.write_table(table, f)
    root.fs.move(temp, root.path(name))


def scrub_archive(
    src: str,
    dst: str,
    manifest: str,
    *,
    options: Optional[Mapping[str, Any]] = None,
    workers: Optional[int] = None,
    chunk_files: Optional[int] = None,
    retry_failed: bool = False,
) -> Dict[str, int]:
    """Scrubs every image under ``src`` into ``dst`` on the connected Ray cluster (a local
    one is started when none is), appending one Parquet file of records per chunk to the
    ``manifest`` folder and skipping inputs it already holds (failed ones too, unless
    ``retry_failed``). ``workers`` actors (default: the cluster's CPUs) each run one
    Scrubber with ``options`` and one ONNX Runtime thread.

    Returns the same counts as :func:`phiscrub.spark.scrub_archive`.
    """
    import pyarrow as pa
    import ray

    options = dict(options or {})
    options.setdefault("threads", 1)
    Scrubber(**options)  # a bad option fails here, before any task starts
    if not ray.is_initialized():
        ray.init()
    cpus = float(ray.cluster_resources().get("CPU", 1))
    workers = max(1, int(workers or cpus))
    actor_cpus = min(1.0, max(0.1, (cpus - READ_CPUS) / workers))

    src_root = Folder(src)
    manifest_root = Folder(manifest)
    out_root = Folder(dst)
    separate(src_root, out_root, manifest_root)
    # What a killed run was writing when it died.
    out_root.remove_stale_parts()
    manifest_root.remove_stale_parts()
    chunk_files = chunk_size(chunk_files, workers)
    images = [src_root.path(rel) for rel, _ in src_root.list_images()]
    held = _read_manifest(manifest_root)
    done = done_inputs(held, retry_failed) if held is not None else set()
    todo = [p for p in images if p not in done]
    for chunk in chunks(todo, chunk_files):
        data = ray.data.read_binary_files(
            list(chunk),
            filesystem=src_root.fs,
            include_paths=True,
            ray_remote_args={"num_cpus": READ_CPUS},
        )
        records = data.map_batches(
            _ScrubActor,
            fn_constructor_kwargs={
                "options": options,
                "src_root": src_root.base,
                "dst": dst,
            },
            batch_size=BATCH_SIZE,
            batch_format="pyarrow",
            concurrency=workers,
            num_cpus=actor_cpus,
        )
        tables = [t for t in ray.get(records.to_arrow_refs()) if t.num_rows]
        if tables:
            table = pa.concat_tables(tables).cast(manifest_schema())
            _write_manifest(manifest_root, table)
    summary = {"scrubbed": 0, "failed": 0, "skipped": 0}
    held = _read_manifest(manifest_root)
    if held is not None:
        wanted = set(images)
        for i, s in zip(held.column("input").to_pylist(), held.column("status").to_pylist()):
            if i in wanted:
                summary[s] = summary.get(s, 0) + 1
    summary["done_before"] = len(images) - len(todo)
    summary["this_run"] = len(todo)
    return summary


def main() -> int:
    def extra(parser):
        parser.add_argument("--address", help="Ray cluster to join (default: start a local one)")
        parser.add_argument("--cpus", type=int, help="CPUs of the local Ray started")
        parser.add_argument("--workers", type=int, help="scrubbing actors (default: the CPUs)")

    args, options = command_line("ray", extra)
    import ray

    ray.init(
        address=args.address,
        num_cpus=None if args.address else args.cpus,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        summary = scrub_archive(
            args.src,
            args.dst,
            args.manifest,
            options=options,
            workers=args.workers,
            chunk_files=args.chunk_files,
            retry_failed=args.retry_failed,
        )
    finally:
        ray.shutdown()
    return report(summary)


if __name__ == "__main__":
    sys.exit(main())
