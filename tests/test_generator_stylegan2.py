"""The ``stylegan2`` generator: community checkpoint layout, loading, W+ synthesis."""

from __future__ import annotations

import argparse
import math

import pytest
import torch
import torch.nn.functional as F

from invbench.errors import AssetError
from invbench.registry import ComponentEntry, ComponentFactory, Registry
from invbench_plugins.generators.stylegan2 import PATH_ENV, StyleGAN2Generator, load_stylegan2
from invbench_plugins.generators.stylegan2_layers import ModulatedConv2d, make_kernel, upfirdn2d
from invbench_plugins.generators.stylegan2_model import StyleGAN2, infer_config, mix_latents

SIZE, STYLE_DIM, N_MLP = 32, 16, 3
CHANNELS = {4: 16, 8: 12, 16: 8, 32: 8}
N_LATENT = 2 * int(math.log2(SIZE)) - 2  # 8


def tiny_model(seed: int = 0) -> StyleGAN2:
    torch.manual_seed(seed)
    model = StyleGAN2(SIZE, STYLE_DIM, N_MLP, channels=CHANNELS)
    with torch.no_grad():  # trained-looking: non-zero noise strengths and biases
        for name, p in model.named_parameters():
            if name.endswith("noise.weight") or name.endswith("bias"):
                p.uniform_(-0.3, 0.3)
    return model.eval()


@pytest.fixture
def ckpt(tmp_path):
    model = tiny_model()
    path = tmp_path / "tiny-stylegan2.pt"
    w_avg = model.mapping(torch.randn(256, STYLE_DIM)).mean(0).detach()
    torch.save({"g_ema": model.state_dict(), "latent_avg": w_avg}, path)
    return path, model, w_avg


def test_state_dict_uses_community_key_names():
    state = tiny_model().state_dict()
    expected = {
        "style.1.weight": (STYLE_DIM, STYLE_DIM),
        "style.3.bias": (STYLE_DIM,),
        "input.input": (1, 16, 4, 4),
        "conv1.conv.weight": (1, 16, 16, 3, 3),
        "conv1.conv.modulation.weight": (16, STYLE_DIM),
        "conv1.conv.modulation.bias": (16,),
        "conv1.noise.weight": (1,),
        "conv1.activate.bias": (16,),
        "to_rgb1.conv.weight": (1, 3, 16, 1, 1),
        "to_rgb1.bias": (1, 3, 1, 1),
        "convs.0.conv.weight": (1, 12, 16, 3, 3),
        "convs.0.conv.blur.kernel": (4, 4),
        "convs.1.conv.weight": (1, 12, 12, 3, 3),
        "convs.5.activate.bias": (8,),
        "to_rgbs.0.upsample.kernel": (4, 4),
        "to_rgbs.2.conv.modulation.weight": (8, STYLE_DIM),
        "noises.noise_0": (1, 1, 4, 4),
        "noises.noise_6": (1, 1, 32, 32),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    assert not any(k.startswith("style.0") for k in state)
    assert infer_config(state) == {
        "size": SIZE,
        "style_dim": STYLE_DIM,
        "n_mlp": N_MLP,
        "channels": CHANNELS,
    }


def test_upfirdn2d_upsamples_and_keeps_dc():
    x = torch.full((1, 2, 5, 5), 0.7)
    up = upfirdn2d(x, make_kernel([1, 3, 3, 1]) * 4, up=2, pad=(2, 1))
    assert up.shape == (1, 2, 10, 10)
    torch.testing.assert_close(up[..., 2:-2, 2:-2], torch.full_like(up[..., 2:-2, 2:-2], 0.7))


@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("demodulate", [False, True])
def test_modulated_conv_matches_per_sample_weight_modulation(upsample, demodulate):
    torch.manual_seed(1)
    conv = ModulatedConv2d(6, 5, 3, 7, demodulate=demodulate, upsample=upsample)
    x, style = torch.randn(3, 6, 8, 8), torch.randn(3, 7)
    out = conv(x, style)
    s = conv.modulation(style)
    refs = []
    for b in range(3):  # the paper's Eq. 1-3: modulate, demodulate, convolve
        w = conv.scale * conv.weight[0] * s[b].view(1, -1, 1, 1)
        if demodulate:
            w = w * torch.rsqrt(w.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        if upsample:
            y = conv.blur(F.conv_transpose2d(x[b : b + 1], w.transpose(0, 1), stride=2))
        else:
            y = F.conv2d(x[b : b + 1], w, padding=1)
        refs.append(y)
    torch.testing.assert_close(out, torch.cat(refs), rtol=1e-4, atol=1e-5)
    assert out.shape[-1] == (16 if upsample else 8)


def test_loads_through_the_registry_and_reproduces_the_model(ckpt):
    path, model, w_avg = ckpt
    registry = Registry()
    target = "invbench_plugins.generators.stylegan2:StyleGAN2Generator"
    registry.add(ComponentEntry("generator", "stylegan2", target, provider="test"))
    gen = ComponentFactory(registry).build("generator", "stylegan2", {"path": str(path)})
    assert gen.latent_shape == (N_LATENT, STYLE_DIM)
    assert gen.output_size == (SIZE, SIZE)
    latents = gen.sample_latents(4, torch.Generator().manual_seed(3))
    assert latents.shape == (4, N_LATENT, STYLE_DIM)
    img = gen.synthesize(latents)
    assert img.shape == (4, 3, SIZE, SIZE)
    assert img.min() >= 0.0 and img.max() <= 1.0 and img.std() > 0.01
    with torch.no_grad():
        ref = ((model.synthesis(latents, "const") + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(img, ref)
    torch.testing.assert_close(gen.mean_latent(), w_avg[None].repeat(N_LATENT, 1))
    assert not any(p.requires_grad for p in gen.model.parameters())
    assert gen.provenance()["size"] == SIZE


def test_w_plus_mixing_uses_every_sub_code(ckpt):
    gen = StyleGAN2Generator(StyleGAN2Generator.Options(path=str(ckpt[0])))
    g = torch.Generator().manual_seed(0)
    a, b = gen.sample_latents(2, g), gen.sample_latents(2, g)
    mixed = mix_latents(a, b, 3)
    assert torch.equal(mixed[:, :3], a[:, :3]) and torch.equal(mixed[:, 3:], b[:, 3:])
    img_a, img_b, img_m = gen.synthesize(a), gen.synthesize(b), gen.synthesize(mixed)
    assert (img_m - img_a).abs().mean() > 1e-3 and (img_m - img_b).abs().mean() > 1e-3
    latents = a.clone().requires_grad_(True)
    gen.synthesize(latents).sum().backward()
    per_code = latents.grad.abs().sum(dim=(0, 2))
    assert per_code.shape == (N_LATENT,) and bool((per_code > 0).all())
    torch.testing.assert_close(gen.synthesize(a[:, 0]), img_a)  # a single w broadcasts


def test_deterministic_noise_and_sampling(ckpt):
    path = str(ckpt[0])
    gen = StyleGAN2Generator(StyleGAN2Generator.Options(path=path))
    lat = gen.sample_latents(2, torch.Generator().manual_seed(5))
    assert torch.equal(lat, gen.sample_latents(2, torch.Generator().manual_seed(5)))
    assert torch.equal(gen.synthesize(lat), gen.synthesize(lat))
    rand = StyleGAN2Generator(StyleGAN2Generator.Options(path=path, noise="random"))
    assert not torch.equal(rand.synthesize(lat), rand.synthesize(lat))
    trunc = StyleGAN2Generator(StyleGAN2Generator.Options(path=path, truncation=0.0))
    lat0 = trunc.sample_latents(3, torch.Generator().manual_seed(5))
    torch.testing.assert_close(lat0, trunc.mean_latent().expand(3, -1, -1))


def test_checkpoint_variants(tmp_path, ckpt):
    path, model, _ = ckpt
    bare = tmp_path / "bare.pt"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, bare)
    loaded, w_avg = load_stylegan2(bare)
    assert w_avg is None
    gen = StyleGAN2Generator(StyleGAN2Generator.Options(path=str(bare), mean_samples=64))
    assert gen.mean_latent(n_samples=64).shape == (N_LATENT, STYLE_DIM)
    old_style = tmp_path / "no-noise.pt"
    torch.save(
        {"g_ema": {k: v for k, v in model.state_dict().items() if "noises" not in k}}, old_style
    )
    first, second = load_stylegan2(old_style)[0], load_stylegan2(old_style)[0]
    assert torch.equal(first.noises.noise_3, second.noises.noise_3)  # seeded, not random
    training = tmp_path / "train.pt"
    torch.save({"g_ema": model.state_dict(), "args": argparse.Namespace(size=SIZE)}, training)
    with pytest.raises(AssetError, match="cannot read") as info:
        load_stylegan2(training)
    assert "allow_pickle" in (info.value.hint or "")
    assert load_stylegan2(training, allow_pickle=True)[0].size == SIZE
    wrong = tmp_path / "wrong.pt"
    torch.save({"g_ema": {"weight": torch.zeros(2)}}, wrong)
    with pytest.raises(AssetError, match="rosinality layout"):
        load_stylegan2(wrong)


def test_missing_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(PATH_ENV, raising=False)
    with pytest.raises(AssetError, match="needs a checkpoint") as info:
        StyleGAN2Generator()
    assert "path=" in (info.value.hint or "")
    with pytest.raises(AssetError, match="does not exist"):
        StyleGAN2Generator(StyleGAN2Generator.Options(path=str(tmp_path / "nope.pt")))
    monkeypatch.setenv(PATH_ENV, str(tmp_path / "also-nope.pt"))
    with pytest.raises(AssetError, match="also-nope"):
        StyleGAN2Generator()


def test_conformance_with_the_checkpoint_from_the_environment(ckpt, monkeypatch):
    from invbench.testing.conformance import check_component

    monkeypatch.setenv(PATH_ENV, str(ckpt[0]))
    registry = Registry()
    target = "invbench_plugins.generators.stylegan2:StyleGAN2Generator"
    registry.add(ComponentEntry("generator", "stylegan2", target, provider="test"))
    checks = check_component(registry, "generator", "stylegan2")
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
