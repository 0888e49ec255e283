"""The ``insightface`` encoder: insightface's ArcFace models (``buffalo_l``, ``antelopev2``).

This is the model most papers and users mean by "ArcFace": the recognition ONNX of an
insightface model pack (``buffalo_l``'s ``w600k_r50.onnx``, an iresnet-50 trained on
WebFace600K; ``antelopev2``'s ``glintr100.onnx``, an iresnet-100 trained on Glint360K;
both 512-D), or any recognition ONNX that ``insightface.model_zoo.get_model`` loads. It runs
through the ``insightface`` package itself (2.x, the optional extra
``invbench[insightface]``), so preprocessing is insightface's: ``ArcFaceONNX.get_feat``
with the model's ``input_mean``/``input_std``, on BGR crops turned RGB by
``cv2.dnn.blobFromImages(..., swapRB=True)``.

Black-box: onnxruntime gives templates only, no gradients and no feature maps
(``differentiable = False``), so white-box losses refuse this encoder. Attack it with
inverters that need only templates, or use it as the evaluation encoder.

Running it with ``buffalo_l`` installed::

    pip install "invbench[insightface]"
    invbench run --encoder insightface --encoder-arg pack=buffalo_l \
        --inverter dfd --inverter-arg perceptual=arcface
    # on a GPU: pip install onnxruntime-gpu (in place of onnxruntime), then add --device cuda

``dfd``'s default perceptual network is ``white-box`` (the attacked encoder's own feature
maps), which this encoder does not have: name a black-box one (``perceptual=arcface``, the
MobileFaceNet's maps) or ``perceptual=none``; otherwise dfd stops with one line when
training starts. Or attack through an adapter: ``--inverter dfd --surrogate arcface`` trains
dfd for ``arcface`` (white-box there) and maps the insightface templates into its space.

Where the files go (insightface's own layout; nothing is downloaded)::

    <root>/models/<pack>/<file>.onnx
    e.g. ~/.insightface/models/buffalo_l/w600k_r50.onnx
         ~/.insightface/models/antelopev2/glintr100.onnx

``<root>`` is the option ``root``, else ``$INSIGHTFACE_HOME``, else ``~/.insightface``
(insightface's default; insightface itself only takes ``root=`` arguments). Unzip the pack's
zip from insightface's model zoo there yourself (the ``antelopev2`` zip nests a second
``antelopev2/`` folder: move its files up one level), or name one file with
``--encoder-arg path=/path/to/model.onnx``. invbench downloads nothing without a pinned
sha256 and insightface publishes none for these packs, so this encoder never calls
insightface's download code: it hands ``get_model`` a local file path (never a model name)
with ``download=False``. The file's sha256 goes into the record instead.

Which file of a pack: ``model=<file>.onnx``, else the table :data:`RECOGNITION_MODELS` for
the packs we know, else the first ``*.onnx`` (sorted by name) that insightface's model
router classifies as a recognition model, the rule of ``insightface.app.FaceAnalysis``.
Packs with an insightface model-package manifest (``manifest.json`` with
``manifest_version: 2``) are loaded through their manifest's ``recognition`` task: the
manifest's preprocessing is used and its declared sha256, if any, is verified by insightface
before a session is made.

The pretrained insightface models are for non-commercial research only (insightface's terms).
"""

from __future__ import annotations

import glob
import logging
import os
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from invbench.assets import sha256_of
from invbench.components import Encoder, Options
from invbench.errors import AssetError, InvbenchError

logger = logging.getLogger(__name__)

#: The optional extra that installs insightface (and opencv-python, requests).
EXTRA = "invbench[insightface]"
#: The recognition model of each insightface model pack we know (the rest are detectors,
#: landmark and gender/age models). Other packs are searched as insightface searches them.
RECOGNITION_MODELS: dict[str, str] = {
    "buffalo_l": "w600k_r50.onnx",
    "buffalo_m": "w600k_r50.onnx",
    "buffalo_s": "w600k_mbf.onnx",
    "buffalo_sc": "w600k_mbf.onnx",
    "antelopev2": "glintr100.onnx",
}
_LICENSE = (
    "insightface model packs: non-commercial research only (insightface's terms); "
    "user-provided file, not pinned by invbench"
)
_NO_DOWNLOAD = "invbench downloads nothing without a pinned sha256"


def insightface_root(root: str | None = None) -> Path:
    """The insightface root: ``root``, else ``$INSIGHTFACE_HOME``, else ``~/.insightface``."""
    chosen = root or os.environ.get("INSIGHTFACE_HOME") or "~/.insightface"
    return Path(chosen).expanduser()


def import_insightface() -> Any:
    """Import ``insightface`` 2.x, or raise one line naming the extra.

    Raises:
        AssetError: When insightface is not installed or is not version 2.x.
    """
    try:
        import insightface
    except ImportError as exc:
        raise AssetError(
            f"encoder 'insightface' needs the optional extra {EXTRA} (insightface 2.x), "
            f"which is not installed ({exc})",
            f'pip install "{EXTRA}"',
        ) from exc
    version = str(getattr(insightface, "__version__", "?"))
    if not version.startswith("2."):
        raise AssetError(
            f"encoder 'insightface' needs insightface 2.x, found {version}",
            f'pip install "{EXTRA}"',
        )
    return insightface


def onnx_providers(device: torch.device) -> list[Any]:
    """The onnxruntime providers for ``device``: CUDA first where asked and offered, then CPU.

    Given to insightface explicitly, so its own default (CoreML or CUDA whenever present)
    never overrides the component's device.
    """
    import onnxruntime as ort

    providers: list[Any] = ["CPUExecutionProvider"]
    if device.type == "cuda":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            index = device.index if device.index is not None else 0
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
        else:
            logger.warning(
                "onnxruntime has no CUDA provider here (install onnxruntime-gpu in place of "
                "onnxruntime); running the insightface model on the CPU"
            )
    return providers


class InsightFaceOptions(Options):
    """Options of the ``insightface`` encoder."""

    pack: str = Field(
        "buffalo_l",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="insightface model pack (a folder <root>/models/<pack>/)",
    )
    root: str | None = Field(
        None, description="insightface root folder (default: $INSIGHTFACE_HOME or ~/.insightface)"
    )
    model: str | None = Field(
        None,
        pattern=r"^[^/\\]+\.onnx$",
        description="ONNX file name inside the pack (default: the pack's recognition model)",
    )
    path: str | None = Field(
        None, description="an explicit recognition ONNX file (overrides pack, root and model)"
    )
    batch_size: int = Field(64, ge=1, description="faces per inference call in encode()")


#: How a model file was found: a file to load, a manifest pack, or a pack to search.
_Kind = Literal["file", "manifest", "search"]


class InsightFaceEncoder(Encoder[InsightFaceOptions]):
    """insightface's ArcFace (buffalo_l w600k_r50, antelopev2 glintr100; 512-D), black-box.

    Runs a recognition ONNX of an insightface model pack through ``insightface`` 2.x
    (onnxruntime): templates only, no gradients (``differentiable = False``).
    """

    name: ClassVar[str] = "insightface"
    description: ClassVar[str] = (
        "insightface's ArcFace models (buffalo_l w600k_r50, antelopev2 glintr100; 512-D) "
        "via the insightface package, black-box"
    )
    version: ClassVar[str] = "1"
    input_size: ClassVar[tuple[int, int]] = (112, 112)
    alignment: ClassVar[str] = "arcface"  # insightface's norm_crop uses the same template
    differentiable: ClassVar[bool] = False

    def __init__(
        self, options: InsightFaceOptions | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(options, device=device)
        # fail at build time (before alignment runs), not at the first encode
        self._insightface_version = str(import_insightface().__version__)
        self._kind, self._target = self._locate()
        self._model: Any = None
        self._manifest: dict[str, Any] | None = None
        self._sha256: str | None = None
        self._dim: int | None = None

    # --- finding the file ------------------------------------------------------------

    @property
    def opts(self) -> InsightFaceOptions:
        """The options, typed."""
        opts = self.options
        assert isinstance(opts, InsightFaceOptions)
        return opts

    def pack_dir(self) -> Path:
        """``<root>/models/<pack>``, where insightface keeps a pack's files."""
        return insightface_root(self.opts.root) / "models" / self.opts.pack

    def _missing_pack(self, pack_dir: Path, expected: str | None, why: str) -> AssetError:
        where = pack_dir / expected if expected else pack_dir / "<recognition model>.onnx"
        hint = (
            f"put the pack's files in {pack_dir}/ (unzip insightface's {self.opts.pack}.zip "
            f"there), set the option root= or $INSIGHTFACE_HOME, or give one file with "
            f"path=/path/to/model.onnx; {_NO_DOWNLOAD}, so the files are not fetched"
        )
        nested = pack_dir / self.opts.pack
        if nested.is_dir() and any(nested.glob("*.onnx")):
            hint = (
                f"the files are in {nested}/ (the zip nests a folder): move them up to "
                f"{pack_dir}/; {_NO_DOWNLOAD}"
            )
        return AssetError(
            f"insightface model pack {self.opts.pack!r} not found ({why}): expected {where}",
            hint,
        )

    def _locate(self) -> tuple[_Kind, Path]:
        """Find the model without loading it (cheap: file checks only)."""
        opts = self.opts
        if opts.path:
            path = Path(opts.path).expanduser()
            if not path.is_file():
                raise AssetError(
                    f"insightface model path={opts.path} is not a file",
                    f"give an existing recognition .onnx file; {_NO_DOWNLOAD}",
                )
            return "file", path.resolve()
        pack_dir = self.pack_dir()
        expected = opts.model or RECOGNITION_MODELS.get(opts.pack)
        if not pack_dir.is_dir():
            raise self._missing_pack(pack_dir, expected, f"no folder {pack_dir}")
        if _has_manifest(pack_dir):
            target = pack_dir / opts.model if opts.model else pack_dir
            return "manifest", target.resolve()
        present = sorted(glob.glob(os.path.join(str(pack_dir), "*.onnx")))
        if not present:
            raise self._missing_pack(pack_dir, expected, f"no .onnx file in {pack_dir}")
        if opts.model:
            path = pack_dir / opts.model
            if not path.is_file():
                names = ", ".join(Path(p).name for p in present)
                raise AssetError(
                    f"insightface model {path} not found (the pack has {names})",
                    f"name one of the pack's files with model=, or put {opts.model} in "
                    f"{pack_dir}/; {_NO_DOWNLOAD}",
                )
            return "file", path.resolve()
        if expected and (pack_dir / expected).is_file():
            return "file", (pack_dir / expected).resolve()
        if expected:
            logger.info(
                "%s not in %s; looking for the recognition model as insightface does",
                expected,
                pack_dir,
            )
        return "search", pack_dir.resolve()

    # --- loading ---------------------------------------------------------------------

    def _get_model(self, name: Path, **extra: Any) -> Any:
        """``insightface.model_zoo.get_model`` on a local path, never downloading."""
        from insightface.model_zoo import get_model

        from invbench_plugins.encoders.onnx_backend import session_options

        try:
            return get_model(
                str(name),
                providers=onnx_providers(self.device),
                sess_options=session_options(),  # threads and determinism settings
                download=False,  # the default; a local path never reaches download code
                **extra,
            )
        except InvbenchError:
            raise
        except Exception as exc:  # corrupt file, bad manifest, sha256 mismatch
            raise AssetError(
                f"insightface cannot load {name}: {type(exc).__name__}: {exc}",
                "check that the file is a complete recognition ONNX model (unzip the pack again)",
            ) from exc

    def _load(self) -> Any:
        if self._kind == "file":
            model = self._get_model(self._target)
            if model is None or getattr(model, "taskname", None) != "recognition":
                task = getattr(model, "taskname", "not a model insightface recognises")
                raise AssetError(
                    f"{self._target} is not a recognition model (insightface routes it as: {task})",
                    "give the pack's recognition ONNX with model= or path=",
                )
        elif self._kind == "manifest":
            model = self._get_model(
                self._target, model_task="recognition", root=str(insightface_root(self.opts.root))
            )
            from insightface.model_zoo.package_manifest import load_model_package

            descriptor = load_model_package(self.pack_dir())
            task = descriptor.task("recognition")
            self._manifest = {
                "path": str(descriptor.manifest_path),
                "model_id": descriptor.model_id,
                "declared_sha256": task.sha256,  # verified by insightface when declared
                "preprocessing": str(dict(task.metadata).get("preprocessing")),
            }
        else:
            model = None
            for file in sorted(glob.glob(os.path.join(str(self._target), "*.onnx"))):
                found = self._get_model(Path(file))
                if found is not None and found.taskname == "recognition":
                    model = found
                    break
                logger.debug("%s: not a recognition model", file)
            if model is None:
                raise self._missing_pack(
                    self._target,
                    RECOGNITION_MODELS.get(self.opts.pack),
                    f"no recognition model among the .onnx files in {self._target}",
                )
        logger.info(
            "insightface %s: %s (input %s, mean %s, std %s) on %s",
            self._insightface_version,
            model.model_file,
            model.input_shape,
            model.input_mean,
            model.input_std,
            model.session.get_providers()[0],
        )
        return model

    @property
    def model(self) -> Any:
        """The ``insightface.model_zoo.ArcFaceONNX`` model, loaded on first use."""
        if self._model is None:
            self._model = self._load()
        return self._model

    @property
    def model_file(self) -> Path:
        """The ONNX file the templates come from."""
        if self._kind == "file":
            return self._target
        return Path(self.model.model_file).resolve()

    @property
    def model_size(self) -> tuple[int, int]:
        """``(H, W)`` of the model's input (usually 112x112)."""
        shape = list(self.model.input_shape)
        if len(shape) == 4 and all(isinstance(d, int) and d > 0 for d in shape[2:]):
            return int(shape[2]), int(shape[3])
        return self.input_size

    @property
    def embedding_dim(self) -> int:
        """Length of the model's output (512 for buffalo_l and antelopev2)."""
        if self._dim is None:
            dims = list(self.model.output_shape)[1:]
            if dims and all(isinstance(d, int) and d > 0 for d in dims):
                self._dim = int(np.prod(dims))
            else:  # symbolic output shape: run one blank face
                blank = np.zeros((*self.model_size, 3), dtype=np.float32)
                self._dim = int(np.asarray(self.model.get_feat([blank])).reshape(1, -1).shape[1])
        return self._dim

    # --- templates -------------------------------------------------------------------

    def encode(self, images: Tensor) -> Tensor:
        """Templates (no gradients: the model is a black box to invbench).

        The crops are resized to the model's input size if needed (bilinear, antialiased),
        scaled to ``[0, 255]``, turned to BGR ``(H, W, 3)`` arrays as insightface expects, and
        passed to ``ArcFaceONNX.get_feat`` (which applies the model's ``input_mean`` and
        ``input_std`` and swaps back to RGB). Pixels are not rounded to uint8 (insightface's
        own pipeline reads uint8 photos), except for models whose input is uint8.

        Args:
            images: ``(B, 3, H, W)`` float RGB in ``[0, 1]``, ArcFace-aligned (112x112).

        Returns:
            ``(B, D)`` float32 on the CPU, unit L2 norm.
        """
        model = self.model
        size = self.model_size
        x = images.detach().float().cpu()
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True)
        x = x * 255.0
        if getattr(model, "input_dtype", np.float32) == np.uint8:
            x = x.round().clamp(0.0, 255.0)
        bgr = x.flip(1).permute(0, 2, 3, 1).contiguous().numpy()  # (B, H, W, 3) BGR
        outputs = []
        for start in range(0, bgr.shape[0], self.opts.batch_size):
            chunk = bgr[start : start + self.opts.batch_size]
            feats = np.asarray(model.get_feat(list(chunk)), dtype=np.float32)
            outputs.append(F.normalize(torch.from_numpy(feats.reshape(len(chunk), -1)), dim=1))
        if not outputs:
            return torch.zeros(0, self.embedding_dim)
        return torch.cat(outputs)

    def provenance(self) -> dict[str, Any]:
        """The model file (pack, path, sha256), insightface's version and preprocessing."""
        model = self.model
        file = self.model_file
        if self._sha256 is None:  # hashed once; nothing is written beside the user's file
            self._sha256 = sha256_of(file)
        licence = file.parent / "MODEL.LICENSE"
        info: dict[str, Any] = {
            "model": {
                "pack": None if self.opts.path else self.opts.pack,
                "file": file.name,
                "path": str(file),
                "sha256": self._sha256,
                "bytes": file.stat().st_size,
                "license": _LICENSE,
                "license_file": str(licence) if licence.is_file() else None,
            },
            "insightface": self._insightface_version,
            "onnxruntime": _version("onnxruntime"),
            "preprocessing": {
                "input_mean": float(model.input_mean),
                "input_std": float(model.input_std),
                "input_size": list(self.model_size),
                "channels": "RGB (BGR crops through cv2.dnn.blobFromImages swapRB=True)",
            },
        }
        if self._manifest is not None:
            info["manifest"] = self._manifest
        return info


def _has_manifest(pack_dir: Path) -> bool:
    """Whether insightface treats ``pack_dir`` as a manifest-V2 model package."""
    try:
        from insightface.model_zoo.package_manifest import has_model_package_manifest
    except ImportError:  # an insightface without model-package manifests
        return False
    return bool(has_model_package_manifest(pack_dir))


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:  # onnxruntime-gpu installs the same module
        try:
            return metadata.version(f"{package}-gpu")
        except metadata.PackageNotFoundError:
            return "missing"
