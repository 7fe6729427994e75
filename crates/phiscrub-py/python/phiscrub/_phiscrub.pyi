"""The native engine behind :class:`phiscrub.Scrubber` (use that class)."""

from os import PathLike
from typing import Dict, Optional, Sequence, Tuple, Union

__version__: str

class Engine:
    def __init__(
        self,
        *,
        ort_lib: Union[str, PathLike, None] = None,
        models: Union[str, PathLike, None] = None,
        threads: int = 1,
        metadata_only: bool = False,
        only: Optional[Sequence[str]] = None,
        skip: Optional[Sequence[str]] = None,
        style: Optional[Sequence[str]] = None,
        fill_color: Optional[str] = None,
        shape: Optional[str] = None,
        reencode: bool = False,
        jpeg_quality: Optional[int] = None,
        timeout: Optional[float] = None,
        face_threshold: Optional[float] = None,
        rotations: bool = True,
        text_blocks: bool = True,
    ) -> None: ...
    def scrub(
        self,
        data: bytes,
        cover: Sequence[Sequence[float]] = ...,
        keep: Sequence[str] = ...,
    ) -> Tuple[bytes, str]: ...
    def inspect(self, data: bytes) -> str: ...
    def record(self, input: str, relative: str, data: bytes) -> Tuple[Optional[bytes], str]: ...
    @property
    def models(self) -> Dict[str, str]: ...
    @property
    def runtime(self) -> Optional[str]: ...
