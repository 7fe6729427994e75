"""Where ONNX Runtime's shared library is: the ``onnxruntime`` wheel phiscrub depends on."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Optional

#: The ONNX Runtime version the wheel is built and tested against.
ONNXRUNTIME_VERSION = "1.32.0"


def onnxruntime_library() -> Optional[str]:
    """The path of ``libonnxruntime`` inside the installed ``onnxruntime`` package, found
    without importing it; ``None`` when the package is absent. ``ORT_DYLIB_PATH``, when set,
    wins, as it does for the CLI."""
    if os.environ.get("ORT_DYLIB_PATH"):
        return os.environ["ORT_DYLIB_PATH"]
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        capi = Path(root) / "capi"
        found = (
            sorted(capi.glob("libonnxruntime.so.*"))
            + sorted(capi.glob("libonnxruntime.*.dylib"))
            + sorted(capi.glob("onnxruntime.dll"))
        )
        if found:
            return str(found[-1])
    return None
