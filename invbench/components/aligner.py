"""The aligner contract: raw photos in, aligned face crops and a success mask out."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from invbench.components.base import Component, OptionsT


class Aligner(Component[OptionsT]):
    """Detects a face and warps it to an alignment template.

    ``align(images, output_size)`` takes a list of ``(3, H_i, W_i)`` float RGB images in
    ``[0, 1]`` and returns ``(faces, ok)``: ``faces`` ``(B, 3, h, w)`` float in ``[0, 1]``
    and ``ok`` ``(B,)`` bool. Where no face is found ``ok`` is ``False`` (a failure to
    acquire, which the runner counts; the face row is then zeros and must not be used).

    Class attributes:
        alignment: Name of the template the crops follow (matches ``Encoder.alignment``).
        default: Whether ``invbench run`` uses it when no ``--aligner`` is named.
    """

    family: ClassVar[str] = "aligner"
    alignment: ClassVar[str] = "arcface"
    default: ClassVar[bool] = False

    def align(self, images: list[Tensor], output_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Align ``images`` to ``output_size`` ``(h, w)``; see the class docstring."""
        raise NotImplementedError
