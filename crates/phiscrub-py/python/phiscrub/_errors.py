"""The exceptions phiscrub raises: one class per stable error code, all under ScrubError.

The code is the same word the CLI's report, the HTTP service and the archive manifests
use, so a caller can branch on the class or on ``e.code``. Messages never quote metadata
values or image content.
"""

from __future__ import annotations


class ScrubError(Exception):
    """An image could not be fully scrubbed, searched and verified; nothing was returned."""

    #: The stable error code (``malformed``, ``limits``, ...).
    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EmptyInputError(ScrubError):
    """The input had no bytes."""

    code = "empty"


class UnknownFormatError(ScrubError):
    """The bytes are not an image format phiscrub reads."""

    code = "unknown_format"


class MalformedError(ScrubError):
    """The container is broken or inconsistent (truncated, loops, bad lengths)."""

    code = "malformed"


class UnsupportedError(ScrubError):
    """A valid file phiscrub refuses (HEIC in this wheel, animation it cannot scrub, ...)."""

    code = "unsupported"


class LimitError(ScrubError):
    """A size, dimension, memory or time limit was exceeded."""

    code = "limits"


class DecodeError(ScrubError):
    """The pixels could not be decoded."""

    code = "decode"


class EncodeError(ScrubError):
    """The scrubbed image could not be encoded."""

    code = "encode"


class VerifyError(ScrubError):
    """The output failed verification (something identifying would have survived)."""

    code = "verify"


class OnnxRuntimeError(ScrubError):
    """ONNX Runtime could not be found, loaded or run."""

    code = "runtime"


class ModelError(ScrubError):
    """A detection model could not be loaded or did not match its manifest."""

    code = "model"


class DetectError(ScrubError):
    """A detector failed on this image."""

    code = "detect"


class RegionError(ScrubError):
    """A caller's region was unusable, or a kept id named no region found."""

    code = "region"


class ScrubIOError(ScrubError):
    """Reading or writing failed."""

    code = "io"


#: Each stable code's class.
BY_CODE: dict[str, type[ScrubError]] = {
    cls.code: cls
    for cls in (
        EmptyInputError,
        UnknownFormatError,
        MalformedError,
        UnsupportedError,
        LimitError,
        DecodeError,
        EncodeError,
        VerifyError,
        OnnxRuntimeError,
        ModelError,
        DetectError,
        RegionError,
        ScrubIOError,
    )
}


def for_code(code: str, message: str) -> ScrubError:
    """The exception for ``code`` (ScrubError itself for a code this version does not know)."""
    return BY_CODE.get(code, ScrubError)(message)
