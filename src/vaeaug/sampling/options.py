"""How a sample is generated: :class:`SamplingOptions`, one object for the whole path.

None of the options but ``support`` changes the events (``precision`` and the
device path change their last bits: see :class:`~vaeaug.sampling.engine.Engine`
and :mod:`vaeaug.sampling.streaming`).
"""

from __future__ import annotations

import dataclasses

from ..errors import InputError
from ..model.support import SUPPORT_MODES

__all__ = ["SamplingOptions"]


@dataclasses.dataclass(frozen=True)
class SamplingOptions:
    """The settings of one generation run, checked when made.

    Attributes:
        chunk_size: events per chunk handed to the caller (and per ROOT basket);
            None: :func:`~vaeaug.sampling.streaming.default_chunk` of the device.
        precision: "fp32", or "bf16" (the decoder's hidden layers under bfloat16
            autocast; fast on GPUs, slow on most CPUs).
        compile: run the decoder through ``torch.compile`` (pays on GPUs for large
            samples; costs tens of seconds of compilation).
        support: one of :data:`~vaeaug.model.support.SUPPORT_MODES`: redraw
            ("reject"), count ("warn") or ignore ("off") candidates outside the
            training support.
        converters: threads converting features to 4-momenta (None: the spare
            cores, 1 to 4).
        convert_on_device: decode features to 4-momenta on the device in torch
            float64; None: for the device types in
            :data:`~vaeaug.sampling.streaming.CONVERT_ON_DEVICE`.
    """

    chunk_size: int | None = None
    precision: str = "fp32"
    compile: bool = False
    support: str = "reject"
    converters: int | None = None
    convert_on_device: bool | None = None

    def __post_init__(self) -> None:
        if self.support not in SUPPORT_MODES:
            raise InputError(f"support '{self.support}' unknown; valid: {', '.join(SUPPORT_MODES)}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise InputError(f"chunk_size must be >= 1, got {self.chunk_size}")
