"""Kernels on buffers large enough to be split over threads, and called from several Python threads.

The CI cases use a few MB (above the kernels' multi-threading threshold); the huge cases
(ResNet-18-sized FedAvg, more than 2**31 elements to catch 32-bit index overflow) are marked slow.
"""

from __future__ import annotations

import threading

import pytest
import torch

from fastfl import ops
from tests.ops.kernel_data import (
    assert_same_values,
    assert_within,
    eps,
    float_data,
    generator,
    ref_cast,
    values,
)

BIG = 1_500_007  # 6 MB of fp32: well above any sensible threading threshold, odd for the tails


def test_weighted_sum_and_accumulate_on_multi_megabyte_buffers(backend):
    gen = generator(0)
    xs = [float_data((BIG,), torch.float32, gen) for _ in range(4)]
    ws = [0.1, 0.2, 0.3, 0.4]
    ref = sum(w * x.double() for w, x in zip(ws, xs, strict=True))
    scale = sum(w * x.double().abs() for w, x in zip(ws, xs, strict=True))
    assert_within(ops.weighted_sum(xs, ws), ref, scale, 6 * eps(torch.float32))
    assert_within(ops.weighted_sum(xs, ws, acc_dtype=torch.float64), ref, scale, 6 * eps(torch.float64))
    acc = torch.zeros(BIG, dtype=torch.float64)
    for x, w in zip(xs, ws, strict=True):
        ops.accumulate_(acc, x, w)
    assert_within(acc, ref, scale, 6 * eps(torch.float64))


def test_mix_on_multi_megabyte_buffers(backend):
    gen = generator(1)
    s, n = float_data((BIG,), torch.float32, gen), float_data((BIG,), torch.bfloat16, gen)
    ref = 0.7 * s.double() + 0.3 * n.double()
    ops.mix_(s, n, 0.3)
    assert_within(s, ref, ref.abs() + n.double().abs(), 4 * eps(torch.float32))


@pytest.mark.parametrize("dst", [torch.float16, torch.bfloat16])
def test_cast_on_multi_megabyte_buffers(backend, dst):
    x = values((BIG,), torch.float32, dst, generator(2))
    assert_same_values(ops.cast(x, dst), ref_cast(x, dst))


def test_flatten_and_unflatten_resnet_sized_list_of_a_few_megabytes(backend):
    gen = generator(3)
    shapes = [(64, 3, 7, 7), (64,), (64,)] + [(128, 128, 3, 3), (128,)] * 5 + [(512, 1000), (1000,)] * 2
    ts = [values(s, torch.float32, torch.float32, gen) for s in shapes]
    flat = ops.flatten(ts, dtype=torch.bfloat16)
    assert_same_values(flat, ref_cast(torch.cat([t.reshape(-1) for t in ts]), torch.bfloat16))
    copies = [torch.full_like(t, float("nan")) for t in ts]
    ops.unflatten_(ops.flatten(ts), copies)
    for a, b in zip(copies, ts, strict=True):
        assert_same_values(a, b)


def _run_in_threads(jobs):
    errors = []
    start = threading.Barrier(len(jobs))

    def run(job):
        try:
            start.wait(timeout=30)
            job()
        except Exception as err:  # noqa: BLE001 - re-raised below, in the test thread
            errors.append(err)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a kernel call did not return"
    if errors:
        raise errors[0]


def test_kernels_called_from_several_threads_give_correct_results(backend):
    def job(seed):
        gen = generator(seed)
        size = 400_000 + seed  # several threads, each big enough for the kernels' own threading
        ts = [float_data((size // 4,), torch.float32, gen) for _ in range(4)]
        xs = [float_data((size,), torch.float16, gen) for _ in range(3)]
        ws = [0.5, 0.25, 0.25 * seed]
        ref = sum(w * x.double() for w, x in zip(ws, xs, strict=True))
        scale = sum(abs(w) * x.double().abs() for w, x in zip(ws, xs, strict=True))
        flat_ref = ref_cast(torch.cat(ts), torch.bfloat16)
        mix_ref = 0.5 * (xs[0].double() + xs[1].double())
        mix_scale = xs[0].double().abs() + xs[1].double().abs()
        out = torch.empty(size)

        def check():
            for _ in range(4):
                assert_same_values(ops.flatten(ts, dtype=torch.bfloat16), flat_ref)
                assert_within(ops.weighted_sum(xs, ws, out=out), ref, scale, 5 * eps(torch.float32))
                s = xs[0].float()
                ops.mix_(s, xs[1], 0.5)
                assert_within(s, mix_ref, mix_scale, 4 * eps(torch.float32))

        return check

    _run_in_threads([job(seed) for seed in range(4)])


@pytest.mark.slow
def test_weighted_sum_of_ten_resnet18_sized_updates(backend):
    n = 11_689_512
    gen = generator(4)
    xs = [float_data((n,), torch.float32, gen) for _ in range(10)]
    ws = [0.1] * 10
    got = ops.weighted_sum(xs, ws)
    ref = torch.zeros(n, dtype=torch.float64)
    for x in xs:
        ref.add_(x.double(), alpha=0.1)
    assert_within(got, ref, sum(0.1 * x.double().abs() for x in xs), 12 * eps(torch.float32))


@pytest.mark.slow
def test_copies_of_more_than_2_to_the_31_elements(backend):
    n = 2**31 + 9  # element indices overflow 32-bit integers
    x = torch.empty(n, dtype=torch.int8)
    x[: 2**20].random_(-128, 128, generator=generator(5))
    x[2**20 :].zero_()
    x[-1000:] = torch.arange(-500, 500).to(torch.int8)
    out = torch.full((n,), 7, dtype=torch.uint8)
    ops.cast(x, torch.uint8, out=out)
    assert torch.equal(out[: 2**20], x[: 2**20].to(torch.uint8))
    assert torch.equal(out[-1000:], x[-1000:].to(torch.uint8))
    assert not out[2**20 : -1000].any()
    del out
    flat = torch.full((n + 5,), 7, dtype=torch.int8)
    ops.flatten([x[:5], x], out=flat)
    assert torch.equal(flat[:5], x[:5]) and torch.equal(flat[5 : 2**20 + 5], x[: 2**20])
    assert torch.equal(flat[-1000:], x[-1000:]) and not flat[2**20 + 5 : -1000].any()
