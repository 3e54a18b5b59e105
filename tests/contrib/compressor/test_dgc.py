"""DGC (Lin et al. 2018): momentum correction, momentum-factor masking, warm-up sparsity schedule."""

from __future__ import annotations

import pytest
import torch

from fastfl.contrib.compressor import DGCCompressor


def test_warmup_follows_the_papers_schedule():
    comp = DGCCompressor()  # ratio 0.001, 4 warm-up epochs from 75% sparsity
    sparsity = [1 - comp.ratio_at(e) for e in range(6)]
    assert sparsity == pytest.approx([0.75, 0.9375, 0.984375, 0.99609375, 0.999, 0.999])
    n = 4000
    for epoch, kept in [(0, 1000), (1, 250), (2, 63), (3, 16), (4, 4)]:
        comp.epoch = epoch
        blob = comp.encode(torch.randn(n))
        assert blob.numel() == 16 + (4 * kept + 7) // 8 * 8 + 4 * kept


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_correction_and_masking(nesterov):
    m, n = 0.5, 8
    comp = DGCCompressor(ratio=0.25, momentum=m, nesterov=nesterov, warmup_epochs=0)
    gen = torch.Generator().manual_seed(0)
    u = torch.zeros(n, dtype=torch.float64)
    v = torch.zeros(n, dtype=torch.float64)
    for _ in range(5):
        g = torch.randint(-8, 9, (n,), generator=gen).double()
        if nesterov:
            u = (u + g) * m
            v = v + u + g
        else:
            u = m * u + g
            v = v + u
        sent = comp.decode(comp.encode(g), (n,), torch.float64)
        mask = sent != 0
        top = v.abs().topk(2).values.min()
        assert int(mask.sum()) <= 2 and bool((v[mask].abs() >= top).all())
        assert torch.equal(sent[mask], v[mask])
        u[mask] = 0  # momentum-factor masking: both buffers forget what was sent
        v[mask] = 0
        assert torch.equal(comp.u.buffer[0], u) and torch.equal(comp.v.buffer[0], v)


def test_runs_without_an_explicit_memory_and_resumes():
    # FedLab-benchmarks' DGCCompressor crashes unless a memory object is passed in.
    gs = [torch.randn(500) for _ in range(4)]
    a = DGCCompressor(ratio=0.01, num_clients=3)
    blobs = [a.encode(g, client=2) for g in gs]
    b = DGCCompressor(ratio=0.01)
    b.encode(gs[0], client=2)
    b.encode(gs[1], client=2)
    c = DGCCompressor(ratio=0.01)
    c.load_state_dict(b.state_dict())
    assert torch.equal(c.encode(gs[2], client=2), blobs[2])
    assert a.u.buffer.shape == (3, 500) and not a.u.buffer[:2].any()
