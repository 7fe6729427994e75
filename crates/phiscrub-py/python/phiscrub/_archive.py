"""What the Spark and Ray jobs share: which files are images, where each output goes, how
it is written, and the manifest's schema. Each record is made by the Rust library (the same
record as the CLI's ``--manifest`` lines); this module only adds the output's final path.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

#: File name endings read as images, any case: what the CLI also treats as images.
IMAGE_EXTENSIONS = (
    "jpg",
    "jpeg",
    "jpe",
    "jfif",
    "png",
    "apng",
    "webp",
    "gif",
    "tif",
    "tiff",
    "heic",
    "heif",
    "hif",
)

#: The manifest's columns, in order, with their Arrow and Spark types.
MANIFEST_COLUMNS: Tuple[Tuple[str, str], ...] = (
    ("input", "string"),
    ("output", "string"),
    ("size", "bigint"),
    ("sha256_in", "string"),
    ("sha256_out", "string"),
    ("status", "string"),
    ("code", "string"),
    ("reason", "string"),
    ("route", "string"),
    ("faces", "int"),
    ("text", "int"),
    ("barcodes", "int"),
    ("manual", "int"),
    ("needs_review", "boolean"),
    ("models", "map<string,string>"),
    ("version", "string"),
    ("duration_ms", "double"),
)

#: The manifest's schema as a Spark DDL string.
MANIFEST_DDL = ", ".join(f"{name} {kind}" for name, kind in MANIFEST_COLUMNS)


def manifest_schema():
    """The manifest's schema as a ``pyarrow.Schema``."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "bigint": pa.int64(),
        "int": pa.int32(),
        "boolean": pa.bool_(),
        "double": pa.float64(),
        "map<string,string>": pa.map_(pa.string(), pa.string()),
    }
    return pa.schema([(name, types[kind]) for name, kind in MANIFEST_COLUMNS])


def to_batch(rows: Sequence[Dict[str, Any]]):
    """Records as one ``pyarrow.RecordBatch`` of the manifest's schema."""
    import pyarrow as pa

    schema = manifest_schema()
    cols = []
    for field in schema:
        values = [r.get(field.name) for r in rows]
        if field.name == "models":
            values = [sorted((v or {}).items()) for v in values]
        cols.append(pa.array(values, type=field.type))
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def is_image(path: str) -> bool:
    """Whether ``path`` ends in an image extension (any case)."""
    name = path.rsplit("/", 1)[-1]
    return "." in name and name.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS


def relative_to(path: str, root: str) -> str:
    """``path`` below ``root`` (both as the engine spells them), with ``/`` separators."""
    root = root.rstrip("/")
    if path.startswith(root + "/"):
        return path[len(root) + 1 :]
    raise ValueError(f"{path} is not under {root}")


def done_inputs(table, retry_failed: bool) -> Set[str]:
    """The inputs a manifest table shows finished: every status but ``failed`` when
    ``retry_failed``."""
    inputs = table.column("input").to_pylist()
    statuses = table.column("status").to_pylist()
    return {i for i, s in zip(inputs, statuses) if not (retry_failed and s == "failed")}


class Folder:
    """A folder given as a local path or a URI pyarrow can open (``s3://``, ``hdfs://``,
    ``gs://``). Writes go to a hidden temporary name beside the target and are moved into
    place, so a killed task never leaves a partial file under an output's name, and a
    retried task writes the same bytes to the same name."""

    def __init__(self, root: str) -> None:
        import pyarrow.fs as pafs

        self.uri = root
        if "://" in root:
            # Hadoop's S3 connector spells it s3a://; pyarrow, s3://.
            for hadoop in ("s3a://", "s3n://"):
                if root.startswith(hadoop):
                    root = "s3://" + root[len(hadoop) :]
            self.fs, self.base = pafs.FileSystem.from_uri(root)
        else:
            local = root[len("file:") :] if root.startswith("file:") else root
            self.fs, self.base = pafs.LocalFileSystem(), os.path.abspath(local)
        self.base = self.base.rstrip("/")

    def list_images(self) -> List[Tuple[str, int]]:
        """Every file under the folder whose name ends in an image extension, as its path
        relative to the folder and its size, sorted."""
        import pyarrow.fs as pafs

        infos = self.fs.get_file_info(pafs.FileSelector(self.base, recursive=True))
        return sorted(
            (relative_to(i.path, self.base), i.size)
            for i in infos
            if i.type == pafs.FileType.File and is_image(i.path)
        )

    def remove_stale_parts(self) -> int:
        """Removes the temporary files (``.phiscrub-HEX.part``) that a killed run left
        anywhere under the folder; returns how many. Run by the driver before any task
        starts, when no write of this job can be in flight."""
        import pyarrow.fs as pafs

        if self.fs.get_file_info(self.base).type != pafs.FileType.Directory:
            return 0
        stale = [
            i.path
            for i in self.fs.get_file_info(pafs.FileSelector(self.base, recursive=True))
            if i.type == pafs.FileType.File and _is_part(i.base_name)
        ]
        for p in stale:
            self.fs.delete_file(p)
        return len(stale)

    def temporary(self, folder: str) -> str:
        """A fresh hidden temporary name in ``folder``."""
        return f"{folder}/{PART_PREFIX}{uuid.uuid4().hex}{PART_SUFFIX}"

    def path(self, relative: str) -> str:
        return f"{self.base}/{relative}"

    def write(self, relative: str, data: bytes) -> str:
        """Writes ``data`` at ``relative`` and returns the path written."""
        target = self.path(relative)
        folder, _, name = target.rpartition("/")
        self.fs.create_dir(folder, recursive=True)
        temp = self.temporary(folder)
        try:
            with self.fs.open_output_stream(temp) as f:
                f.write(data)
            self.fs.move(temp, target)
        except BaseException:
            try:
                self.fs.delete_file(temp)
            except OSError:
                pass
            raise
        return target


PART_PREFIX, PART_SUFFIX = ".phiscrub-", ".part"


def _is_part(name: str) -> bool:
    core = name[len(PART_PREFIX) : -len(PART_SUFFIX)]
    return (
        name.startswith(PART_PREFIX)
        and name.endswith(PART_SUFFIX)
        and len(core) == 32
        and all(c in "0123456789abcdef" for c in core)
    )


def separate(src: "Folder", *others: "Folder") -> None:
    """Refuses an output or manifest folder that is the input folder, inside it, or holds
    it: outputs keep their inputs' relative paths, so an overlap could write over an input
    or feed outputs back in as inputs."""
    for other in others:
        a, b = src.base + "/", other.base + "/"
        if type(src.fs) is type(other.fs) and (a.startswith(b) or b.startswith(a)):
            raise ValueError(f"{other.uri} and the input folder {src.uri} overlap; choose another")


def chunk_size(requested: Optional[int], slots: int) -> int:
    """Inputs per chunk: as asked, else 32 per worker slot (at least 64), so that a chunk
    keeps every slot busy yet a killed run loses little."""
    return max(1, requested) if requested else max(64, 32 * slots)


def scrub_rows(
    scrubber,
    paths: Iterable[str],
    contents: Iterable[Optional[bytes]],
    src_root: str,
    out: Folder,
) -> List[Dict[str, Any]]:
    """Scrubs each input and writes its output; returns one manifest record per input. A
    failure is a record, never an exception, so the rest of the batch goes on."""
    rows = []
    for path, data in zip(paths, contents):
        started = time.perf_counter()
        scrubbed, record = scrubber._record(path, relative_to(path, src_root), data or b"")
        if scrubbed is not None:
            try:
                record["output"] = out.write(record["output"], scrubbed)
            except OSError as e:
                record.update(
                    status="failed",
                    code="io",
                    reason=f"cannot write the output: {e.strerror or type(e).__name__}",
                    output=None,
                    sha256_out=None,
                )
        else:
            record["output"] = None
        record["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
        rows.append(record)
    return rows


def chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    """``items`` in consecutive runs of at most ``size``."""
    size = max(1, size)
    for i in range(0, len(items), size):
        yield items[i : i + size]


def command_line(engine: str, extra) -> Tuple[Any, Dict[str, Any]]:
    """Parses ``python -m phiscrub.ENGINE SRC DST --manifest M ...``: the arguments both
    jobs take, plus those ``extra(parser)`` adds. Returns them and the Scrubber options."""
    import argparse
    import json

    parser = argparse.ArgumentParser(
        prog=f"python -m phiscrub.{engine}",
        description=f"Scrub every image under SRC into DST with {engine.capitalize()}, "
        "appending to a Parquet manifest and skipping what it shows done.",
    )
    parser.add_argument("src", help="input folder or URI (read recursively)")
    parser.add_argument("dst", help="output folder or URI")
    parser.add_argument("--manifest", required=True, help="Parquet manifest folder or URI")
    parser.add_argument(
        "--chunk-files", type=int, help="inputs per chunk (default: 32 per worker, at least 64)"
    )
    parser.add_argument("--retry-failed", action="store_true", help="redo inputs that failed")
    parser.add_argument("--metadata-only", action="store_true", help="look for nothing in pixels")
    parser.add_argument("--options", default="{}", help="Scrubber options as a JSON object")
    extra(parser)
    args = parser.parse_args()
    try:
        separate(Folder(args.src), Folder(args.dst), Folder(args.manifest))
        options = json.loads(args.options)
    except ValueError as e:
        parser.error(str(e))
    if args.metadata_only:
        options["metadata_only"] = True
    return args, options


def report(summary: Dict[str, int]) -> int:
    """Prints a run's summary line; the exit status is 1 when any input failed."""
    s = summary
    print(
        f"{s['scrubbed']} scrubbed, {s['failed']} failed, {s['skipped']} skipped; "
        f"{s['this_run']} done in this run, {s['done_before']} already in the manifest"
    )
    return 1 if s["failed"] else 0
