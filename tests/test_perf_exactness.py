"""The performance fixes of issue 14 give exactly the results of the code they replaced.

Each replaced implementation is kept here verbatim as the reference (``_reference_*``), and
the new one must match it bit for bit: thresholds (every field of ``ThresholdResult``) at
FAR 1e-2 ... 1e-6 on random and tie-heavy data, the pair index sets and score arrays, and
the fused ONNX graph's outputs (a small synthetic graph here; the real ArcFace model on ORL
faces in the slow set).
"""

from __future__ import annotations

import numpy as np
import pytest

from invbench.metrics import pairs, thresholds
from invbench.metrics.pairs import (
    all_nonmated_cosines,
    genuine_pairs,
    nonmated_count,
    sample_pairs,
    sorted_unique,
)
from invbench.metrics.thresholds import (
    MIN_EXPECTED_FALSE_MATCHES,
    ThresholdResult,
    threshold_at_fmr,
    thresholds_at_fmr,
)
from invbench.metrics.verification import as_unit_rows, reference_scores

FARS = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6]
EXTRA = [0.0, 1e-7, 0.05, 0.2, 0.5, 0.8, 1.0 - 1e-12, 1.0 - 1e-17, 1.0]


# --- references: the implementations before issue 14 -------------------------------------


def _reference_threshold(impostor_scores, alpha: float) -> ThresholdResult:
    imp = np.asarray(impostor_scores, dtype=np.float64).reshape(-1)
    n = int(imp.size)
    low = n * alpha < MIN_EXPECTED_FALSE_MATCHES
    if alpha >= 1.0 - np.finfo(np.float64).eps:
        tau = float(np.nextafter(imp.min(), -np.inf))
        return ThresholdResult(tau, float(alpha), 1.0, n, n, low, False)
    values, counts = np.unique(imp, return_counts=True)  # ascending
    n_at_or_above = np.cumsum(counts[::-1])[::-1]
    qualifies = (n_at_or_above / n) <= alpha
    if not qualifies.any():
        tau = float(np.nextafter(values[-1], np.inf))
        return ThresholdResult(tau, float(alpha), 0.0, n, 0, low, True)
    k = int(np.argmax(qualifies))
    n_fm = int(n_at_or_above[k])
    return ThresholdResult(float(values[k]), float(alpha), n_fm / n, n, n_fm, low, False)


def _reference_genuine_pairs(codes):
    chunks = []
    for k in np.unique(codes):
        rows = np.flatnonzero(codes == k)
        if rows.size > 1:
            a, b = np.triu_indices(rows.size, 1)
            chunks.append(np.stack([rows[a], rows[b]], axis=1))
    if not chunks:
        return np.zeros((0, 2), dtype=np.int64)
    p = np.concatenate(chunks)
    return p[np.lexsort((p[:, 1], p[:, 0]))]


def _reference_all_nonmated(unit, codes, block=1024):
    out = []
    n = unit.shape[0]
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        sims = unit[r0:r1] @ unit[r0:].T
        rows = np.arange(r0, r1)[:, None]
        cols = np.arange(r0, n)[None, :]
        keep = (cols > rows) & (codes[r0:r1, None] != codes[None, r0:])
        out.append(sims[keep])
    return np.concatenate(out) if out else np.zeros(0)


def _reference_sample_pairs(codes_a, codes_b, n_pairs, seed, *, upper_triangle):
    na, nb = codes_a.size, codes_b.size
    rng = np.random.default_rng(seed)
    found = np.zeros(0, dtype=np.int64)
    while found.size < n_pairs:
        size = 2 * (n_pairs - found.size) + 1024
        a = rng.integers(0, na, size=size)
        b = rng.integers(0, nb, size=size)
        if upper_triangle:
            a, b = np.minimum(a, b), np.maximum(a, b)
            ok = (a != b) & (codes_a[a] != codes_b[b])
        else:
            ok = codes_a[a] != codes_b[b]
        found = np.unique(np.concatenate([found, a[ok] * nb + b[ok]]))
    found = np.sort(rng.choice(found, size=n_pairs, replace=False))
    return np.stack([found // nb, found % nb], axis=1)


def _reference_nonmated_block(ur, ref_id, up, probe_id, block=256):
    chunks = []
    for r0 in range(0, ur.shape[0], block):
        sims = ur[r0 : r0 + block] @ up.T
        keep = ref_id[r0 : r0 + block, None] != probe_id[None, :]
        chunks.append(sims[keep])
    return np.concatenate(chunks) if chunks else np.zeros(0)


# --- thresholds --------------------------------------------------------------------------


def _score_sets(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    normal = rng.normal(0.1, 0.15, size=n)
    sorted_desc = np.sort(normal)[::-1].copy()
    return {
        "normal64": normal,
        "normal32": normal.astype(np.float32),
        "ties_2dp": np.round(normal, 2),  # ~100 distinct values: every block is a tie block
        "ties_int": rng.integers(0, 5, size=n).astype(np.float64),
        "ties_top": np.where(normal > np.quantile(normal, 0.999), 0.9, normal),
        "constant": np.full(n, 0.25),
        "sorted_desc": sorted_desc,
        "sorted_asc": sorted_desc[::-1].copy(),
        "two_values32": rng.choice(np.array([0.5, -0.25], dtype=np.float32), size=n),
    }


def _assert_same(scores: np.ndarray, alphas: list[float]) -> None:
    got = thresholds_at_fmr(scores, alphas)
    want = [_reference_threshold(scores, a) for a in alphas]
    assert got == want  # every field, tau bit for bit (float equality, no NaN possible)
    for a, r in zip(alphas, want, strict=True):
        assert threshold_at_fmr(scores, a) == r


@pytest.mark.parametrize("n", [1, 2, 5, 999, 20_000])
def test_thresholds_identical_small_sets(n):
    for scores in _score_sets(n, seed=n).values():
        _assert_same(scores, FARS + EXTRA)


@pytest.mark.parametrize("name", list(_score_sets(8).keys()))
def test_thresholds_identical_scan_path(monkeypatch, name):
    # the large-set path (strided-sample bound, chunked scan, tie fill) on 50k scores
    monkeypatch.setattr(thresholds, "_FULL_SORT_BELOW", 0)
    monkeypatch.setattr(thresholds, "_SCAN_CHUNK", 4096)
    scores = _score_sets(50_000, seed=1)[name]
    _assert_same(scores, FARS + EXTRA)


def test_thresholds_identical_when_the_sample_misleads(monkeypatch):
    # the strided sample sees only high values: too few scores reach its bound, so the
    # selection falls back to a full sort, and the result is still the reference's
    monkeypatch.setattr(thresholds, "_FULL_SORT_BELOW", 0)
    n = 1 << 17
    scores = np.random.default_rng(2).uniform(-1, 0, size=n)
    step = max(1, n // 65536)
    scores[::step] = np.random.default_rng(3).uniform(0.5, 1, size=scores[::step].size)
    _assert_same(scores, FARS + [0.05, 0.1])


def test_thresholds_identical_natural_large_set():
    # above the full-sort size with the module's own settings, float64 and float32
    rng = np.random.default_rng(4)
    scores = np.round(rng.normal(size=(1 << 20) + 12345), 4)  # tie-heavy
    _assert_same(scores.astype(np.float32), FARS)


def test_thresholds_errors_unchanged():
    with pytest.raises(ValueError, match="at least one"):
        thresholds_at_fmr([], [0.1])
    with pytest.raises(ValueError, match="1 impostor scores are not finite"):
        thresholds_at_fmr([0.1, np.nan, 0.3], [0.1])
    with pytest.raises(ValueError, match="not finite"):
        thresholds_at_fmr(np.array([0.1, np.inf], dtype=np.float32), [0.1])
    with pytest.raises(ValueError, match="alpha must be"):
        thresholds_at_fmr([0.1, 0.2], [0.1, 1.5])
    assert thresholds_at_fmr([0.1, 0.2], []) == []


def test_float32_input_is_not_copied_to_float64():
    scores = np.random.default_rng(5).normal(size=1000).astype(np.float32)
    assert thresholds._impostor_array(scores) is not None
    assert thresholds._impostor_array(scores).dtype == np.float32
    assert np.shares_memory(thresholds._impostor_array(scores), scores)


# --- pairs and scores --------------------------------------------------------------------


def _codes(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, k, size=n)


@pytest.mark.parametrize(("n", "k"), [(0, 1), (1, 1), (7, 2), (300, 40), (1000, 400)])
def test_genuine_pairs_identical(n, k):
    codes = _codes(n, k, n)
    np.testing.assert_array_equal(genuine_pairs(codes), _reference_genuine_pairs(codes))
    odd = codes * 7 - 3  # any integer labels, not only 0..K-1
    np.testing.assert_array_equal(genuine_pairs(odd), _reference_genuine_pairs(odd))
    assert genuine_pairs(codes).dtype == np.int64


@pytest.mark.parametrize(
    ("n", "k", "block"),
    [(0, 1, 1024), (1, 1, 1024), (300, 30, 1024), (300, 30, 64), (1100, 200, 1024), (257, 3, 16)],
)
def test_all_nonmated_cosines_bit_identical(n, k, block):
    rng = np.random.default_rng(n + block)
    unit = as_unit_rows(rng.normal(size=(max(n, 1), 24)))[:n]
    codes = _codes(n, k, n + 1)
    got = all_nonmated_cosines(unit, codes, block=block)
    want = _reference_all_nonmated(unit, codes, block=block)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got.view(np.uint64), want.view(np.uint64))
    assert got.size == nonmated_count(codes)


def test_sorted_unique_is_np_unique():
    rng = np.random.default_rng(6)
    for x in (rng.integers(0, 50, 1000), rng.integers(0, 1 << 40, 10_000), np.zeros(0, int)):
        np.testing.assert_array_equal(sorted_unique(x), np.unique(x))


@pytest.mark.parametrize("upper", [True, False])
def test_sample_pairs_identical(upper):
    codes = _codes(3000, 700, 7)
    other = codes if upper else _codes(500, 700, 8)
    for n_pairs, seed in ((10, 0), (30_000, 3)):
        got = sample_pairs(codes, other, n_pairs, seed, upper_triangle=upper)
        want = _reference_sample_pairs(codes, other, n_pairs, seed, upper_triangle=upper)
        np.testing.assert_array_equal(got, want)


def test_reference_scores_nonmated_bit_identical():
    rng = np.random.default_rng(9)
    refs = rng.normal(size=(600, 32))
    ref_id = rng.permutation(600)
    probe_id = rng.integers(0, 600, size=900)
    probes = rng.normal(size=(900, 32))
    got = reference_scores(refs, ref_id, probes, probe_id, block=256).nonmated
    want = _reference_nonmated_block(as_unit_rows(refs), ref_id, as_unit_rows(probes), probe_id)
    assert np.array_equal(got.view(np.uint64), want.view(np.uint64))


def test_pairs_module_keeps_its_names():
    for name in ("pair_cosines", "pair_counts", "genuine_pairs", "all_nonmated_cosines"):
        assert callable(getattr(pairs, name))


# --- fused PReLU -------------------------------------------------------------------------


def _converted_prelu_graph(channels: int = 6):
    """Conv -> tflite2onnx's PReLU pattern -> Conv -> the same pattern, as converted."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(10)
    inits, nodes = [], []
    x = "input"
    for i in range(2):
        cin = 3 if i == 0 else channels
        w = rng.normal(size=(channels, cin, 3, 3)).astype(np.float32)
        half = (rng.normal(size=channels) * 0.3).astype(np.float32)  # alpha / 2, signed
        inits += [
            numpy_helper.from_array(w, f"w{i}"),
            numpy_helper.from_array(half, f"m{i}"),
            numpy_helper.from_array(np.array([1, channels, 1, 1], dtype=np.int64), f"s{i}"),
        ]
        nodes += [
            helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
            helper.make_node("Abs", [f"c{i}"], [f"a{i}"]),
            helper.make_node("Sub", [f"c{i}", f"a{i}"], [f"d{i}"]),
            helper.make_node("Reshape", [f"m{i}", f"s{i}"], [f"rm{i}"]),
            helper.make_node("Mul", [f"rm{i}", f"d{i}"], [f"p{i}"]),
            helper.make_node("Add", [f"r{i}", f"p{i}"], [f"y{i}"]),
        ]
        x = f"y{i}"
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", channels, 8, 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    return model


def test_fuse_prelu_bit_identical_on_a_small_graph():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from invbench_plugins.encoders.onnx_backend import fuse_prelu, session_options

    model = _converted_prelu_graph()
    fused = onnx.ModelProto()
    fused.CopyFrom(model)
    assert fuse_prelu(fused) == 2
    onnx.checker.check_model(fused)
    prelu = ["Relu", "BatchNormalization", "Add", "BatchNormalization", "Add"]
    assert [n.op_type for n in fused.graph.node] == ["Conv", *prelu, "Conv", *prelu]
    assert fuse_prelu(fused) == 0  # nothing left to fuse
    rng = np.random.default_rng(11)
    x = rng.normal(size=(5, 3, 8, 8)).astype(np.float32)
    x[0] = 0.0
    x[1, :, :4] *= 1e-38  # subnormal-range activations
    outs = []
    for m in (model, fused):
        session = ort.InferenceSession(
            m.SerializeToString(), session_options(), providers=["CPUExecutionProvider"]
        )
        outs.append(session.run(None, {"input": x})[0])
    assert np.array_equal(outs[0].view(np.uint32), outs[1].view(np.uint32))


def test_fuse_prelu_leaves_a_pattern_read_elsewhere():
    pytest.importorskip("onnx")
    from onnx import helper

    from invbench_plugins.encoders.onnx_backend import fuse_prelu

    model = _converted_prelu_graph()
    model.graph.output.append(helper.make_empty_tensor_value_info("a0"))  # Abs read outside
    assert fuse_prelu(model) == 1


@pytest.mark.parametrize(("device", "rewritten"), [("cpu", True), ("cuda", False)])
def test_prelu_rewrite_runs_on_the_cpu_provider_only(monkeypatch, tmp_path, device, rewritten):
    """CUDA's BatchNormalization raises epsilon to 1e-5: there the file runs as converted."""
    ort = pytest.importorskip("onnxruntime")
    import torch

    from invbench_plugins.encoders import onnx_backend

    opened: list[tuple[str, list]] = []

    def fake_session(path, options, providers):
        opened.append((path, providers))

    converted = tmp_path / "model.onnx"
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", fake_session)
    monkeypatch.setattr(onnx_backend, "prelu_fused_model", lambda p: p.with_suffix(".prelu2.onnx"))
    onnx_backend.make_session(converted, torch.device(device), prelu=True)
    [(path, providers)] = opened
    assert path == str(converted.with_suffix(".prelu2.onnx") if rewritten else converted)
    first = providers[0] if isinstance(providers[0], str) else providers[0][0]
    assert first == ("CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider")


@pytest.mark.assets
def test_fused_arcface_bit_identical_on_orl():
    """The real converted MobileFaceNet: fused (what ``encode`` runs) == the file as saved."""
    import torch

    from invbench_plugins.encoders.arcface import ArcFaceEncoder, arcface_preprocess
    from invbench_plugins.encoders.onnx_backend import make_session, run_session
    from tests.test_encoder_arcface import load_orl_faces

    faces, _ = load_orl_faces()
    encoder = ArcFaceEncoder()
    path = encoder.onnx_path()
    plain = make_session(path, torch.device("cpu"))
    fused = make_session(path, torch.device("cpu"), prelu=True)
    onnx = pytest.importorskip("onnx")
    from invbench_plugins.encoders.onnx_backend import fuse_prelu

    assert fuse_prelu(onnx.load(str(path))) == 33  # every PReLU of MobileFaceNet
    x = arcface_preprocess(faces).numpy()
    noise = np.random.default_rng(12).normal(size=(16, 3, 112, 112)).astype(np.float32)
    for batch in (x, x[:3], noise):
        a, b = run_session(plain, batch), run_session(fused, batch)
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32))
    enc = encoder.encode(faces)
    ref = torch.nn.functional.normalize(torch.from_numpy(run_session(plain, x)).float(), dim=1)
    assert torch.equal(enc, ref)


def test_all_nonmated_cosines_float32_is_half_the_memory_within_1e6():
    """The float32 path: same pairs in the same order, each score within 1e-6."""
    rng = np.random.default_rng(11)
    unit = as_unit_rows(rng.normal(size=(700, 192)))
    codes = _codes(700, 90, 12)
    exact = all_nonmated_cosines(unit, codes, block=256)
    low = all_nonmated_cosines(unit, codes, block=256, dtype=np.float32)
    assert low.dtype == np.float32 and low.shape == exact.shape
    assert low.nbytes * 2 == exact.nbytes
    assert float(np.abs(low.astype(np.float64) - exact).max()) < 1e-6


def test_large_real_score_sets_are_float32_and_say_so(monkeypatch):
    """Above FLOAT32_SCORES_ABOVE pairs the saved impostor scores, and the rates' details,
    are float32; below it, float64 as before."""
    from invbench.metrics import verification
    from invbench_plugins.protocols.metric_builders import impostor_arrays, threshold_details
    from invbench_plugins.protocols.verification import VerificationOptions

    rng = np.random.default_rng(13)
    templates = rng.normal(size=(400, 64))
    codes = _codes(400, 40, 14)
    small = verification.real_score_sets(templates, codes)
    monkeypatch.setattr(verification, "FLOAT32_SCORES_ABOVE", 1000)
    large = verification.real_score_sets(templates, codes)
    assert small.impostor.dtype == np.float64 and large.impostor.dtype == np.float32
    np.testing.assert_allclose(large.impostor, small.impostor, atol=1e-6, rtol=0)
    options = VerificationOptions()
    for scores, dtype in ((small, "float64"), (large, "float32")):
        saved = impostor_arrays(options, scores.impostor, scores.n_nonmated_pairs, False)
        assert saved["impostor"].dtype == np.dtype(dtype)
        thr = thresholds.thresholds_at_fmr(saved["impostor"], [1e-2])[0]
        assert threshold_details(thr, saved, options)["impostor_dtype"] == dtype
