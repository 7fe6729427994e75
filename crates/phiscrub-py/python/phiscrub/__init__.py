"""phiscrub: de-identify clinical and workplace photos before they are shared.

Strips identifying metadata with strict per-format allowlists, covers faces, text and
barcodes found by ONNX models, and fails closed: an image that cannot be fully scrubbed,
searched and verified raises a :class:`ScrubError` and returns nothing.

>>> import phiscrub
>>> scrubber = phiscrub.Scrubber()                       # doctest: +SKIP
>>> data, report = scrubber.scrub(open("ward.jpg", "rb").read())  # doctest: +SKIP

:mod:`phiscrub.spark` and :mod:`phiscrub.ray` run it over an archive on those engines.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from . import _phiscrub
from ._errors import (
    BY_CODE,
    DecodeError,
    DetectError,
    EmptyInputError,
    EncodeError,
    LimitError,
    MalformedError,
    ModelError,
    OnnxRuntimeError,
    RegionError,
    ScrubError,
    ScrubIOError,
    UnknownFormatError,
    UnsupportedError,
    VerifyError,
)
from ._runtime import ONNXRUNTIME_VERSION, onnxruntime_library

__version__: str = _phiscrub.__version__

__all__ = [
    "Scrubber",
    "ScrubError",
    "BY_CODE",
    "DecodeError",
    "DetectError",
    "EmptyInputError",
    "EncodeError",
    "LimitError",
    "MalformedError",
    "ModelError",
    "OnnxRuntimeError",
    "RegionError",
    "ScrubIOError",
    "UnknownFormatError",
    "UnsupportedError",
    "VerifyError",
    "ONNXRUNTIME_VERSION",
    "__version__",
]

Box = Sequence[float]
Regions = Union[Sequence[Box], Mapping[str, Sequence[Any]], None]

_OPTIONS = (
    "ort_lib",
    "models",
    "threads",
    "metadata_only",
    "only",
    "skip",
    "style",
    "fill_color",
    "shape",
    "reencode",
    "jpeg_quality",
    "timeout",
    "face_threshold",
    "rotations",
    "text_blocks",
)

# One engine per process and configuration: Spark reuses a Python worker for many tasks and
# Ray an actor for many batches, and loading the models is the costly part.
_engines: Dict[str, "_phiscrub.Engine"] = {}
_engines_lock = threading.Lock()


def _engine(options: Mapping[str, Any]) -> "_phiscrub.Engine":
    key = json.dumps(options, sort_keys=True, default=str)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            kwargs = dict(options)
            if not kwargs.get("metadata_only") and kwargs.get("ort_lib") is None:
                kwargs["ort_lib"] = onnxruntime_library()
            if isinstance(kwargs.get("style"), Mapping):
                kwargs["style"] = [f"{k}={v}" for k, v in kwargs["style"].items()]
            elif isinstance(kwargs.get("style"), str):
                kwargs["style"] = [s for s in kwargs["style"].split(",") if s.strip()]
            for name in ("only", "skip"):
                if isinstance(kwargs.get(name), str):
                    kwargs[name] = [s for s in kwargs[name].split(",") if s.strip()]
            engine = _phiscrub.Engine(**kwargs)
            _engines[key] = engine
        return engine


def _corrections(regions: Regions) -> Tuple[list, list]:
    if regions is None:
        return [], []
    if isinstance(regions, Mapping):
        unknown = set(regions) - {"cover", "keep"}
        if unknown:
            raise ValueError(f"regions: unknown keys {sorted(unknown)} (cover, keep)")
        cover = [list(map(float, b)) for b in regions.get("cover", ())]
        keep = [str(k) for k in regions.get("keep", ())]
        if isinstance(regions.get("keep"), str):
            raise ValueError("regions: keep is a list of region ids")
        return cover, keep
    return [list(map(float, b)) for b in regions], []


class Scrubber:
    """Scrubs images held in memory. Build one and reuse it: the models load once.

    Every option is a keyword, named as the CLI's flag, and all are optional; the defaults are
    what ``phiscrub PHOTO`` does:

    - ``metadata_only`` (False): strip metadata, look for nothing in the pixels.
    - ``only`` / ``skip``: categories to look for or leave out (``"face"``, ``"text"``,
      ``"barcode"``), as a list or a comma-separated string.
    - ``style``: how each category is covered, ``{"face": "blur"}`` or ``"face=pixelate"``;
      default solid fill everywhere (blurred text has been read back by published tools).
    - ``fill_color`` (``"000000"``), ``shape`` (``"box"`` or ``"ellipse"``).
    - ``reencode`` (False), ``jpeg_quality`` (None: keep the source's quality).
    - ``timeout``: seconds per image (None: the library default; 0: no limit).
    - ``threads`` (1): ONNX Runtime threads. Budget them against the threads calling
      :meth:`scrub` at once, so the total matches the cores you have.
    - ``face_threshold``, ``rotations`` (True), ``text_blocks`` (True): detection tuning.
    - ``ort_lib``: the ONNX Runtime library; default the ``onnxruntime`` wheel's
      (``ORT_DYLIB_PATH`` wins when set). ``models``: a models folder; default built in.

    A Scrubber pickles as its options, so Spark and Ray can ship it to workers; each worker
    process loads the models once per distinct set of options. It is safe to call from
    several threads at once: each call releases the GIL while it works.

    Raises :class:`OnnxRuntimeError` or :class:`ModelError` when detection cannot start,
    and ``ValueError`` or ``TypeError`` for a bad option.
    """

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(
                f"Scrubber() got unknown options {sorted(unknown)}; known: {', '.join(_OPTIONS)}"
            )
        self._options: Dict[str, Any] = dict(options)
        self._engine = _engine(self._options)

    @property
    def options(self) -> Dict[str, Any]:
        """The options this scrubber was built with (a copy)."""
        return dict(self._options)

    @property
    def models(self) -> Dict[str, str]:
        """The models it runs, by name, with their sha256; empty for metadata only."""
        return dict(self._engine.models)

    @property
    def runtime(self) -> Optional[str]:
        """The ONNX Runtime library loaded; ``None`` for metadata only."""
        rt = self._engine.runtime
        return None if rt is None else str(rt)

    def scrub(self, data: bytes, regions: Regions = None) -> Tuple[bytes, Dict[str, Any]]:
        """Scrubs one image and returns ``(output bytes, report)``.

        ``regions`` are a person's corrections: a list of ``[x, y, w, h]`` boxes to cover
        (in pixels of the upright image), or ``{"cover": [...], "keep": ["face-10-20-30-40"]}``
        to also leave uncovered regions named by an earlier report's ``id``.

        The report says what was found and removed, never the values. Raises a
        :class:`ScrubError` subclass, whose ``code`` is the stable error code, when the image
        cannot be fully scrubbed; nothing is returned then.
        """
        cover, keep = _corrections(regions)
        out, report = self._engine.scrub(data, cover, keep)
        return out, json.loads(report)

    def inspect(self, data: bytes) -> Dict[str, Any]:
        """What an image holds (format, size, orientation, metadata by category and size),
        without changing it or running the detectors."""
        return json.loads(self._engine.inspect(data))

    def _record(self, input: str, relative: str, data: bytes) -> Tuple[Optional[bytes], Dict[str, Any]]:
        """Scrubs one archive input without raising for the image: the output bytes (None
        on failure) and its manifest record, ``output`` relative to the output root."""
        out, record = self._engine.record(input, relative, data)
        return out, json.loads(record)

    def __getstate__(self) -> Dict[str, Any]:
        return dict(self._options)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(**state)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in sorted(self._options.items()))
        return f"phiscrub.Scrubber({shown})"

