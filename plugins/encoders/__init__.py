"""Built-in encoders.

Registered lazily (``"module:Class"`` strings), so listing them imports no model code:

* ``arcface``: MobileFaceNet trained with the ArcFace loss (192-D), see
  :mod:`invbench_plugins.encoders.arcface`.
* ``dlib``: dlib's face recognition ResNet (128-D), see :mod:`invbench_plugins.encoders.dlib`.
* ``mobileface``: becauseofAI MobileFace (256-D), a TF.js graph model, see
  :mod:`invbench_plugins.encoders.mobileface`.
* ``insightface``: insightface's own model packs (``buffalo_l``...) from a local folder.
* ``onnx``: any face-recognition ONNX model given by path, preprocessing as options.
"""

from __future__ import annotations

from invbench.hookspecs import Register, hookimpl


@hookimpl
def register_encoders(register: Register) -> None:
    """Register the built-in encoders."""
    register("arcface", "invbench_plugins.encoders.arcface:ArcFaceEncoder")
    register("dlib", "invbench_plugins.encoders.dlib:DlibEncoder")
    register("insightface", "invbench_plugins.encoders.insightface:InsightFaceEncoder")
    register("onnx", "invbench_plugins.encoders.onnx_model:OnnxEncoder")
    register("mobileface", "invbench_plugins.encoders.mobileface:MobileFaceEncoder")
