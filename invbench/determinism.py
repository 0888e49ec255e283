"""Byte-identical results on one machine: every network call sees a fixed number of rows.

Measured on one machine (AMD EPYC, AVX2, 2 cores; torch 2.14.1 with oneDNN 3.12,
onnxruntime 1.32) on ORL, each computation in a fresh process without a cache:

* **Run to run: nothing varied.** Aligned crops (MTCNN) and templates (arcface through
  onnxruntime and through torch, dlib) of all 400 faces were byte-identical between two
  runs, and across torch threads 1, 2, 4, 8 and onnxruntime intra-op threads 1, 2, 4, 8.
* **The number of rows per network call picks the kernel.** Below 16 rows torch runs a 1x1
  convolution through its own im2col path instead of oneDNN when it has one thread, a batch
  of one takes that path for small inputs whatever the thread count, and oneDNN picks
  implementations by shape. So a face's result depended on how many faces shared its call:
  templates of the torch paths (arcface ``backend=torch``, dlib) moved by up to 4e-7 in
  batches of 1-8, and differently with one thread than with two; MTCNN moved landmarks
  enough that 17 of 30 ORL faces detected one at a time got another crop (one grey level
  here and there; rounding the crop to uint8 turns a last-bit difference into a visible
  one), and detector batches of 8 at one thread changed 78 of 400 crops. onnxruntime gave
  the same bits for every batch size. A run's batches only change with its data (another
  subset, the last short batch), so this made results depend on a face's neighbours and,
  for short batches, on the machine's core count.
* **Another instruction set gives other bits.** With oneDNN held to SSE4.1
  (``ONEDNN_MAX_CPU_ISA=SSE41``, standing in for another CPU) 72 of 100 ORL crops differed
  by a grey level somewhere and templates by up to 5.8e-4 per element (1.5e-6 in cosine):
  the size of the differences seen between two machines (21-199 of 400 ORL templates).
  Pinning that would mean giving up the vectorised kernels; records carry the CPU model,
  the instruction set torch uses and the thread counts instead
  (:func:`invbench.provenance.environment`).

What is pinned: :func:`fixed_batches` (and ``Encoder.templates(..., fixed_batch=True)``)
call a network on chunks of exactly ``size`` rows, the last padded by repeating its last row
(those rows are computed and dropped). The runner's template stage encodes 16 faces per call
(``invbench.runner.stages.ENCODE_BATCH``; from 16 rows up every convolution goes to oneDNN
whatever the thread count, and 16 is as fast per face as 64 on CPU); MTCNN detects 16 images
per call and runs R-Net and O-Net on 32 crops per call. onnxruntime sessions of the built-in
encoders use as many intra-op threads as torch, one inter-op thread, sequential execution
and ``use_deterministic_compute``. A face's crop and template are then the same bytes
whatever batch it falls in and whatever the thread count (checked for 1, 2, 3 threads and
for ORL subsets of 1, 3, 10 and 40 people), and ORL's crops and templates are exactly those
computed before the change, so cached results stay valid. Cost: on ORL none measurable; a
single face (the baseline's mean face) is encoded as 16 rows (0.2-0.4 s CPU instead of
0.02 s); an image whose size no other image in its batch shares costs 16 detector rows.

Not covered: GPUs (cuDNN chooses algorithms by its own heuristics; not measured), other
library versions or builds, other instruction sets (above), and callers outside the cached
stages (protocols, inverters) that call ``Encoder.templates`` on batches of their own size:
those are run-to-run identical on one machine, not independent of their batch size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor

Out = TypeVar("Out", Tensor, tuple[Tensor, ...])


def pad_rows(x: Tensor, size: int) -> Tensor:
    """``x`` grown to ``size`` rows by repeating its last row (unchanged when it has them).

    >>> pad_rows(torch.tensor([[1.0], [2.0]]), 4).flatten().tolist()
    [1.0, 2.0, 2.0, 2.0]
    """
    missing = size - x.shape[0]
    if missing <= 0 or x.shape[0] == 0:
        return x
    return torch.cat([x, x[-1:].expand(missing, *x.shape[1:])])


def fixed_batches(fn: Callable[[Tensor], Out], x: Tensor, size: int) -> Out:
    """``fn(x)`` computed on chunks of exactly ``size`` rows, the last padded (see above).

    Args:
        fn: A row-wise map: ``(n, ...)`` -> a tensor or a tuple of tensors with ``n`` rows.
        x: ``(N, ...)`` input; ``N`` may be zero (``fn`` then runs once on ``x``).
        size: Rows per call of ``fn``.

    Returns:
        What ``fn(x)`` returns, row for row, with the padding rows dropped.

    >>> calls = []
    >>> out = fixed_batches(lambda t: calls.append(len(t)) or t * 2, torch.arange(5.0), 4)
    >>> out.tolist(), calls
    ([0.0, 2.0, 4.0, 6.0, 8.0], [4, 4])
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, not {size}")
    n = x.shape[0]
    if n == 0:
        return fn(x)
    parts: list[Tensor | tuple[Tensor, ...]] = []
    for start in range(0, n, size):
        chunk = x[start : start + size]
        rows = chunk.shape[0]
        out = fn(pad_rows(chunk, size))
        parts.append(tuple(o[:rows] for o in out) if isinstance(out, tuple) else out[:rows])
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(col) for col in zip(*parts, strict=True))  # type: ignore[return-value]
    return torch.cat(parts)  # type: ignore[arg-type,return-value]
