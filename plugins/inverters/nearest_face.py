"""The ``nearest-face`` inverter: return the training face whose template is closest.

A retrieval baseline with nothing to learn: for a leaked template ``t`` it returns the
attacker's own face ``x_j`` with ``j = argmax_j cos(t, F(x_j))`` over the training faces
(one matrix product). It needs only ``F``'s templates of the attacker's faces (black-box),
and shows how much of a template's identity a large enough bank of faces already matches
without any inversion: a reference row beside the mean-face baseline and ``ridge``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from invbench.components import FitContext, Inverter, Options, TrainingData
from invbench.images import resize, to_uint8


class NearestFaceOptions(Options):
    """Options of ``nearest-face``.

    Attributes:
        max_train_images: Search at most this many training faces (the first ones).
    """

    max_train_images: int | None = Field(None, ge=1, description="training faces searched")


class NearestFaceInverter(Inverter[NearestFaceOptions]):
    """The training face with the most similar template (retrieval baseline)."""

    name: ClassVar[str] = "nearest-face"
    reference: ClassVar[bool] = True
    version: ClassVar[str] = "1"
    description: ClassVar[str] = (
        "Retrieval baseline: the training face whose template is closest (no training)"
    )
    profiles: ClassVar[dict[str, dict[str, Any]]] = {"quick": {}, "smoke": {}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bank_templates = torch.zeros(0, self.encoder.embedding_dim)
        self.bank_images = torch.zeros(0, 3, *self.output_size, dtype=torch.uint8)

    def threat_model(self) -> str:
        """Black-box: templates of the attacker's faces only."""
        return "black-box"

    def fit(self, data: TrainingData, ctx: FitContext) -> dict[str, Any]:
        """Keep the training templates and faces (8-bit, at the output size).

        Returns:
            ``n_faces``: the size of the bank searched.
        """
        n = len(data) if self.options.max_train_images is None else self.options.max_train_images
        self.bank_templates = F.normalize(data.templates[:n].float(), dim=1)
        faces = data.images[:n]
        if tuple(faces.shape[-2:]) != self.output_size:
            faces = torch.from_numpy(to_uint8(resize(faces.float() / 255.0, self.output_size)))
        self.bank_images = faces.clone()
        return {"n_faces": int(self.bank_templates.shape[0])}

    def nearest(self, templates: Tensor) -> Tensor:
        """``(B,)`` index of the closest bank template to each of ``templates`` ``(B, D)``."""
        t = F.normalize(templates.float(), dim=1)
        return (t @ self.bank_templates.T).argmax(dim=1)

    def invert(self, templates: Tensor) -> Tensor:
        """``(B, D)`` -> ``(B, 3, H, W)``: the nearest training faces, in ``[0, 1]``."""
        return self.bank_images[self.nearest(templates)].float() / 255.0

    def state_dict(self) -> dict[str, Any]:
        """The bank of templates and faces."""
        return {"templates": self.bank_templates.clone(), "images": self.bank_images.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.bank_templates = state["templates"].clone()
        self.bank_images = state["images"].clone()
