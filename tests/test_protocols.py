"""The four built-in protocols on synthetic evaluation contexts, and recomputation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from invbench import EvalContext
from invbench.errors import OptionsError
from invbench.images import resize
from invbench.metrics.thresholds import tar, threshold_at_fmr
from invbench_plugins.protocols.image_quality import ImageQualityProtocol
from invbench_plugins.protocols.sar import SARProtocol
from invbench_plugins.protocols.type1 import TypeIProtocol
from invbench_plugins.protocols.type2 import TypeIIProtocol

K, M, D = 40, 10, 32  # identities, images each, template length
N = K * M
N_IMPOSTOR = N * (N - 1) // 2 - K * M * (M - 1) // 2


def make_ctx(
    attack: str = "perfect",
    *,
    seed: int = 0,
    image_size: int = 24,
    recon_size: int = 24,
    n_failed: int = 0,
    baseline: bool = True,
) -> EvalContext:
    """Templates clustered by identity; a perfect attack re-encodes to the real template."""
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(K), M)
    real = rng.normal(size=(K, D))[codes] + 0.6 * rng.normal(size=(N, D))
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(N, 3, image_size, image_size, generator=g)
    if attack == "perfect":
        recon_t = real.copy()
        recon_i = resize(images, (recon_size, recon_size), "bilinear")
    else:
        recon_t = rng.normal(size=(N, D))
        recon_i = torch.rand(N, 3, recon_size, recon_size, generator=g)
    base = np.repeat(rng.normal(size=(1, D)), N, axis=0)
    return EvalContext(
        identities=np.array([f"id{c:02d}" for c in codes]),
        keys=np.array([f"img{i}" for i in range(N)]),
        images=images,
        templates=torch.from_numpy(real).float(),
        reconstructions=recon_i,
        real_templates=torch.from_numpy(real).float(),
        recon_templates=torch.from_numpy(recon_t).float(),
        baseline_templates=torch.from_numpy(base).float() if baseline else None,
        n_total=N + n_failed,
        n_failed_to_acquire=n_failed,
    )


@pytest.fixture(scope="module")
def perfect() -> EvalContext:
    return make_ctx("perfect")


@pytest.fixture(scope="module")
def random_ctx() -> EvalContext:
    return make_ctx("random", seed=1)


def _json_ready(metrics):
    for name, m in metrics.items():
        json.dumps(m.model_dump(mode="json"), allow_nan=False), name  # noqa: B018


def test_registered_lazily_and_loadable():
    from invbench.plugin_manager import create_plugin_manager

    registry = create_plugin_manager(entry_points=False).registry
    expected = {
        "type1": TypeIProtocol,
        "type2": TypeIIProtocol,
        "sar": SARProtocol,
        "image-quality": ImageQualityProtocol,
    }
    for name, cls in expected.items():
        entry = registry.get("protocol", name)
        assert isinstance(entry.target, str) and cls.summary()
        assert registry.load("protocol", name) is cls
        assert cls.default and cls.main_metric


def test_type1_perfect_attack(perfect):
    p = TypeIProtocol()
    m = p.metrics(p.scores(perfect))
    _json_ready(m)
    assert p.main_metric in m
    for far in ("1e-2", "1e-3"):
        t = m[f"tar_type1@far={far}"]
        assert t.value == 1.0 and t.n == N and t.count == N
        assert t.details["counts"] == f"{N}/{N}" and t.details["n_genuine"] == N
        assert t.details["n_impostor"] == N_IMPOSTOR and not t.details["impostor_sampled"]
        assert t.details["realised_fmr"] <= float(far)
        assert not t.details["low_impostor_count"]
        assert t.ci95[1] == 1.0 and t.ci95[0] > 0.99
        base = m[f"baseline_tar_type1@far={far}"]
        assert base.value < 0.1
        assert t.details["margin_over_baseline"] == pytest.approx(1.0 - base.value)
        orig = m[f"tar_original@far={far}"]
        assert (
            orig.n == K * M * (M - 1) // 2
            and "bootstrap over identities" in orig.details["ci_method"]
        )
        assert "frr_with_fta" in orig.details
    assert m["identity_similarity_type1"].value == pytest.approx(1.0)
    assert m["identity_similarity_type1"].details["q05"] == pytest.approx(1.0)
    assert m["rank1_type1"].value == 1.0 and m["rank1_type1"].n == K
    assert m["baseline_rank1_type1"].value == pytest.approx(1 / K)
    assert m["fta"].value == 0.0


def test_type1_random_attack_is_at_chance(random_ctx):
    p = TypeIProtocol(TypeIProtocol.make_options({"fars": [0.1, 0.01]}))
    m = p.metrics(p.scores(random_ctx))
    assert m["tar_type1@far=1e-1"].value == pytest.approx(0.1, abs=0.04)
    assert m["tar_type1@far=1e-2"].value <= 0.03
    assert abs(m["identity_similarity_type1"].value) < 0.05
    assert m["rank1_type1"].value <= 0.15


def test_failures_are_counted_never_dropped():
    ctx = make_ctx("perfect", n_failed=10)
    recon = ctx.recon_templates.clone()
    recon[:5] = float("nan")  # re-encoding failed: failed attacks
    ctx.recon_templates = recon
    p = TypeIProtocol()
    m = p.metrics(p.scores(ctx))
    t = m["tar_type1@far=1e-2"]
    assert (t.count, t.n, t.details["n_failed_attempts"]) == (N - 5, N, 5)
    assert m["fta"].count == 10 and m["fta"].n == N + 10
    assert t.details["fta"] == pytest.approx(10 / (N + 10))
    orig = m["tar_original@far=1e-2"]
    fnmr = 1 - orig.value
    fta = 10 / (N + 10)
    assert orig.details["frr_with_fta"] == pytest.approx(fta + fnmr * (1 - fta))
    assert m["identity_similarity_type1"].details["n_nonfinite"] == 5


def test_type2_perfect_attack_equals_original(perfect):
    p1, p2 = TypeIProtocol(), TypeIIProtocol()
    m1, m2 = p1.metrics(p1.scores(perfect)), p2.metrics(p2.scores(perfect))
    _json_ready(m2)
    assert p2.main_metric in m2
    for far in ("1e-2", "1e-3"):
        t2 = m2[f"tar_type2@far={far}"]
        assert t2.n == K * M * (M - 1)  # ordered pairs, per pair
        # x_hat re-encodes to x, so pair (i, j) scores as the real genuine pair (i, j)
        assert t2.value == pytest.approx(m1[f"tar_original@far={far}"].value)
        assert "bootstrap" in t2.details
        assert t2.ci95[0] <= t2.value <= t2.ci95[1]
        assert m2[f"baseline_tar_type2@far={far}"].value < t2.value
    assert m2["rank1_type2"].n == N - K


def test_type2_random_attack_is_at_chance(random_ctx):
    p = TypeIIProtocol(TypeIIProtocol.make_options({"fars": [0.1]}))
    m = p.metrics(p.scores(random_ctx))
    assert m["tar_type2@far=1e-1"].value == pytest.approx(0.1, abs=0.03)


def test_sar_perfect_attack(perfect):
    p = SARProtocol()
    m = p.metrics(p.scores(perfect))
    _json_ready(m)
    assert p.main_metric in m
    s = m["sar@fmr=1e-3"]
    assert (s.value, s.count, s.n, s.details["counts"]) == (1.0, K, K, f"{K}/{K}")
    assert s.details["n_impostor"] == K * (N - K) - (N - K)  # references x other probes
    assert m["tmr@fmr=1e-3"].n == N - K
    assert m["baseline_sar@fmr=1e-3"].value < 0.2
    assert m["identity_similarity_sar"].value == pytest.approx(1.0)


def test_sar_probe_attack_equals_system_tmr(perfect):
    p = SARProtocol(SARProtocol.make_options({"attack": "probes"}))
    m = p.metrics(p.scores(perfect))
    assert m["sar@fmr=1e-2"].value == m["tmr@fmr=1e-2"].value
    assert "bootstrap" in m["sar@fmr=1e-2"].details  # an identity attacked more than once


def test_sar_mean_enrolment_and_random(random_ctx, perfect):
    p = SARProtocol(SARProtocol.make_options({"n_enrol": 3, "fars": [0.1]}))
    m = p.metrics(p.scores(perfect))
    assert m["sar@fmr=1e-1"].n == 3 * K and m["sar@fmr=1e-1"].value > 0.9
    assert m["tmr@fmr=1e-1"].n == N - 3 * K
    r = p.metrics(p.scores(random_ctx))
    assert r["sar@fmr=1e-1"].value == pytest.approx(0.1, abs=0.07)


def test_sar_all_pairs_impostors(perfect):
    p = SARProtocol(SARProtocol.make_options({"impostors": "all-pairs"}))
    assert p.scores(perfect)["impostor"].size == N_IMPOSTOR


@pytest.mark.parametrize("cls", [TypeIProtocol, TypeIIProtocol, SARProtocol])
def test_recompute_from_saved_arrays_with_another_fmr(cls, perfect, tmp_path):
    p = cls()
    raw = p.scores(perfect)
    for name, arr in raw.items():
        np.save(tmp_path / f"{name}.npy", arr, allow_pickle=False)
    loaded = {f.stem: np.load(f, allow_pickle=False) for f in tmp_path.glob("*.npy")}
    assert loaded.keys() == raw.keys()
    same = p.metrics(loaded)
    assert {k: v.model_dump() for k, v in same.items()} == {
        k: v.model_dump() for k, v in p.metrics(raw).items()
    }
    other = cls(cls.make_options({"fars": [0.05]}))
    again = other.metrics(loaded)
    tau = threshold_at_fmr(loaded["impostor"], 0.05).tau
    trials = {"type1": "type1", "type2": "type2", "sar": "attack"}
    key = next(k for k in trials.values() if k in loaded)
    prefix = {"type1": "tar_type1@far", "type2": "tar_type2@far", "attack": "sar@fmr"}[key]
    assert again[f"{prefix}=5e-2"].value == tar(loaded[key], tau)
    assert again[f"{prefix}=5e-2"].details["tau"] == tau
    assert not any("1e-2" in name for name in again)


def test_threshold_from_file(perfect, tmp_path):
    imp = np.linspace(-0.2, 0.4, 5000)
    np.save(tmp_path / "impostor.npy", imp)
    opts = {"threshold_source": "file", "impostor_file": str(tmp_path / "impostor.npy")}
    p = TypeIProtocol(TypeIProtocol.make_options(opts))
    scores = p.scores(perfect)
    np.testing.assert_array_equal(scores["impostor"], imp)
    t = p.metrics(scores)["tar_type1@far=1e-2"]
    assert t.details["threshold_source"].startswith("file:") and t.details["n_impostor"] == 5000
    assert t.details["n_nonmated_pairs"] == 5000 and not t.details["impostor_sampled"]


def test_an_unreachable_operating_point_is_unavailable_not_a_number(perfect):
    p = TypeIProtocol(TypeIProtocol.make_options({"max_impostor_pairs": 5000}))
    scores = p.scores(perfect)
    t = p.metrics(scores)["tar_type1@far=1e-3"]  # 5000 impostors allow 5 false matches
    assert t.details["impostor_sampled"] and t.details["n_nonmated_pairs"] == N_IMPOSTOR
    assert t.value is None and t.count is None and t.ci95 is None
    assert "5000 impostor scores allow 5 false matches" in t.unavailable
    assert t.details["low_impostor_count"] and "warning" not in t.details
    loose = TypeIProtocol(
        TypeIProtocol.make_options({"max_impostor_pairs": 5000, "min_false_matches": 5})
    )
    t = loose.metrics(scores)["tar_type1@far=1e-3"]  # 5 is enough when the user says so
    assert t.value == 1.0 and "warning" in t.details


@pytest.mark.parametrize("bad", [{"fars": []}, {"fars": [0.0]}, {"fars": [1.5]}, {"x": 1}])
def test_options_are_validated(bad):
    with pytest.raises(OptionsError):
        TypeIProtocol.make_options(bad)


@pytest.fixture
def no_lpips_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))


def test_image_quality_perfect_and_resized(no_lpips_weights):
    few = np.arange(60)  # image metrics need no impostors: keep the test fast
    ctx = _subset(make_ctx("perfect", image_size=32, recon_size=32), few)
    p = ImageQualityProtocol()
    raw = p.scores(ctx)
    m = p.metrics(raw)
    _json_ready(m)
    assert raw["psnr"].shape == (60,) and raw["ssim"].shape == (60,)
    assert m["psnr"].value == pytest.approx(100.0) and m["ssim"].value == pytest.approx(1.0)
    assert m["lpips"].value is None and "not found" in m["lpips"].unavailable
    assert "lpips_unavailable" in raw
    resized = _subset(make_ctx("perfect", image_size=32, recon_size=24), few)
    m2 = p.metrics(p.scores(resized))
    # the originals are resized exactly as documented (bilinear, antialiased)
    assert m2["ssim"].value == pytest.approx(1.0) and m2["psnr"].value == pytest.approx(100.0)
    assert "32x32 -> 24x24" in m2["psnr"].details["resize"]
    rnd = p.metrics(p.scores(_subset(make_ctx("random", recon_size=24), few)))
    assert rnd["psnr"].value < 15 and rnd["ssim"].value < 0.2


def test_image_quality_recompute_and_small_images(no_lpips_weights, tmp_path):
    p = ImageQualityProtocol()
    raw = p.scores(_subset(make_ctx("random", image_size=16, recon_size=8), np.arange(60)))
    assert "ssim_unavailable" in raw
    for name, arr in raw.items():
        np.save(tmp_path / f"{name}.npy", arr, allow_pickle=False)
    loaded = {f.stem: np.load(f, allow_pickle=False) for f in tmp_path.glob("*.npy")}
    m = p.metrics(loaded)
    assert m["ssim"].value is None and "smaller than" in m["ssim"].unavailable
    assert m["psnr"].value == pytest.approx(float(np.mean(raw["psnr"])))
    assert m["lpips"].unavailable


def test_grey_originals_are_compared_in_luminance(no_lpips_weights):
    ctx = _subset(make_ctx("perfect", image_size=16, recon_size=16), np.arange(8))
    grey = ctx.images.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1).contiguous()
    # a colour reconstruction whose BT.601 luma equals the grey original's
    tint = torch.tensor([0.05 / 0.299, -0.05 / 0.587, 0.0]).view(1, 3, 1, 1)
    recon = grey + tint * torch.linspace(0.2, 1, 8).view(8, 1, 1, 1)
    ctx.images[:4], ctx.reconstructions[:4] = grey[:4], recon[:4]  # rows 4..7 stay colour
    p = ImageQualityProtocol()
    raw = p.scores(ctx)
    assert raw["grey"].tolist() == [True] * 4 + [False] * 4
    assert np.allclose(raw["psnr"][:4], 100.0) and np.allclose(raw["ssim"][:4], 1.0)
    assert np.allclose(raw["psnr"][4:], 100.0)  # the perfect colour rows, in RGB
    m = p.metrics(raw)
    assert "luminance for 4 grey originals, RGB for 4 colour ones" in m["psnr"].implementation
    rgb = ImageQualityProtocol(ImageQualityProtocol.make_options({"colour_space": "rgb"}))
    raw_rgb = rgb.scores(ctx)
    assert not raw_rgb["grey"].any() and (raw_rgb["psnr"][:4] < 40).all()
    assert rgb.metrics(raw_rgb)["psnr"].details["colour_space"] == "RGB"


def _subset(ctx: EvalContext, rows: np.ndarray) -> EvalContext:
    t = torch.from_numpy(rows)
    return EvalContext(
        identities=ctx.identities[rows],
        keys=ctx.keys[rows],
        images=ctx.images[t],
        templates=ctx.templates[t],
        reconstructions=ctx.reconstructions[t],
        real_templates=ctx.real_templates[t],
        recon_templates=ctx.recon_templates[t],
        baseline_templates=ctx.baseline_templates[t],
        n_total=rows.size,
        n_failed_to_acquire=0,
    )


def test_singleton_identities_give_unavailable_not_crashes(perfect):
    ctx = _subset(perfect, np.arange(0, N, M))  # one image per identity
    m1 = TypeIProtocol().metrics(TypeIProtocol().scores(ctx))
    assert "780 impostor scores allow 7 false matches" in m1["tar_type1@far=1e-2"].unavailable
    p1 = TypeIProtocol(TypeIProtocol.make_options({"fars": [0.1]}))
    m1 = p1.metrics(p1.scores(ctx))
    assert m1["tar_type1@far=1e-1"].value == 1.0
    assert m1["tar_original@far=1e-1"].value is None
    m2 = TypeIIProtocol().metrics(TypeIIProtocol().scores(ctx))
    assert m2["tar_type2@far=1e-2"].unavailable and m2["rank1_type2"].value is None
    m3 = SARProtocol().metrics(SARProtocol().scores(ctx))  # no probes: no system threshold
    assert "no real impostor" in m3["sar@fmr=1e-2"].unavailable
    assert m3["baseline_sar@fmr=1e-3"].value is None
    for m in (m1, m2, m3):
        _json_ready(m)


def test_single_identity_has_no_threshold(perfect):
    ctx = _subset(perfect, np.arange(M))
    m = TypeIProtocol().metrics(TypeIProtocol().scores(ctx))
    assert m["tar_type1@far=1e-2"].unavailable and m["tar_original@far=1e-3"].unavailable
    assert m["identity_similarity_type1"].value == pytest.approx(1.0)
