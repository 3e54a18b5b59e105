"""Bad arguments to every kernel: each raises a fastfl error that names the argument, on every backend.

Validation happens before any kernel runs, so a rejected call also leaves its outputs untouched.
"""

from __future__ import annotations

import pytest
import torch

from fastfl import ops
from fastfl.errors import FastFLError, KernelArgumentError, KernelTypeError

f32 = torch.ones(6)
f32b = torch.ones(6)
meta = torch.empty(6, device="meta")
strided = torch.ones(6, 2).t()  # not contiguous
cplx = torch.ones(6, dtype=torch.complex64)
ints = torch.ones(6, dtype=torch.int32)
nan, inf = float("nan"), float("inf")

CASES = [
    # (id, call, error class, text the message must contain)
    ("flatten-not-a-sequence", lambda: ops.flatten(f32), KernelTypeError, "tensors"),
    ("flatten-non-tensor", lambda: ops.flatten([f32, [1.0]]), KernelTypeError, "tensors[1]"),
    ("flatten-complex", lambda: ops.flatten([f32, cplx]), KernelTypeError, "tensors[1]"),
    ("flatten-non-contiguous", lambda: ops.flatten([strided]), KernelArgumentError, "tensors[0]"),
    ("flatten-out-short", lambda: ops.flatten([f32], out=torch.empty(5)), KernelArgumentError, "out"),
    ("flatten-out-2d", lambda: ops.flatten([f32], out=torch.empty(2, 3)), KernelArgumentError, "out"),
    (
        "flatten-out-complex",
        lambda: ops.flatten([f32], out=torch.empty(6, dtype=torch.complex64)),
        KernelTypeError,
        "out",
    ),
    ("flatten-out-strided", lambda: ops.flatten([f32], out=torch.empty(12)[::2]), KernelArgumentError, "out"),
    (
        "flatten-mixed-devices",
        lambda: ops.flatten([f32], out=torch.empty(6, device="meta")),
        (KernelArgumentError, KernelTypeError),
        "out",
    ),
    (
        "flatten-mixed-devices-inputs",
        lambda: ops.flatten([f32, meta]),
        (KernelArgumentError, KernelTypeError),
        "tensors[1]",
    ),
    ("unflatten-mode", lambda: ops.unflatten_(f32, [f32b], mode="mul"), KernelArgumentError, "mode"),
    ("unflatten-mode-case", lambda: ops.unflatten_(f32, [f32b], mode="COPY"), KernelArgumentError, "mode"),
    ("unflatten-long-flat", lambda: ops.unflatten_(torch.ones(7), [f32b]), KernelArgumentError, "flat"),
    ("unflatten-short-flat", lambda: ops.unflatten_(torch.ones(5), [f32b]), KernelArgumentError, "flat"),
    (
        "unflatten-flat-strided",
        lambda: ops.unflatten_(torch.ones(12)[::2], [f32b]),
        KernelArgumentError,
        "flat",
    ),
    (
        "unflatten-target-strided",
        lambda: ops.unflatten_(torch.ones(12), [strided]),
        KernelArgumentError,
        "tensors[0]",
    ),
    (
        "unflatten-add-into-ints",
        lambda: ops.unflatten_(f32, [ints], mode="add"),
        KernelTypeError,
        "tensors[0]",
    ),
    ("unflatten-complex", lambda: ops.unflatten_(cplx, [f32b]), KernelTypeError, "flat"),
    (
        "unflatten-mixed-devices",
        lambda: ops.unflatten_(meta, [f32b]),
        (KernelArgumentError, KernelTypeError),
        "flat",
    ),
    ("cast-complex-source", lambda: ops.cast(cplx, torch.float32), KernelTypeError, "x"),
    ("cast-to-complex", lambda: ops.cast(f32, torch.complex64), KernelTypeError, "complex64"),
    ("cast-out-dtype", lambda: ops.cast(f32, torch.float16, out=torch.empty(6)), KernelTypeError, "out"),
    (
        "cast-out-size",
        lambda: ops.cast(f32, torch.float16, out=torch.empty(5, dtype=torch.float16)),
        KernelArgumentError,
        "out",
    ),
    ("cast-non-contiguous", lambda: ops.cast(strided, torch.float16), KernelArgumentError, "x"),
    (
        "cast-mixed-devices",
        lambda: ops.cast(f32, torch.float32, out=meta),
        (KernelArgumentError, KernelTypeError),
        "out",
    ),
    ("wsum-empty", lambda: ops.weighted_sum([], []), KernelArgumentError, "inputs"),
    ("wsum-not-a-sequence", lambda: ops.weighted_sum(f32, [1.0]), KernelTypeError, "inputs"),
    (
        "wsum-lengths",
        lambda: ops.weighted_sum([f32, torch.ones(5)], [1, 1]),
        KernelArgumentError,
        "inputs[1]",
    ),
    ("wsum-weights-count", lambda: ops.weighted_sum([f32, f32b], [1.0]), KernelArgumentError, "weights"),
    (
        "wsum-weights-nan",
        lambda: ops.weighted_sum([f32, f32b], [1.0, nan]),
        KernelArgumentError,
        "weights[1]",
    ),
    (
        "wsum-weights-inf",
        lambda: ops.weighted_sum([f32], torch.tensor([-inf])),
        KernelArgumentError,
        "weights[0]",
    ),
    (
        "wsum-weights-text",
        lambda: ops.weighted_sum([f32], ["a"]),
        (KernelTypeError, KernelArgumentError),
        "weights",
    ),
    ("wsum-weights-none", lambda: ops.weighted_sum([f32], None), KernelTypeError, "weights"),
    ("wsum-int-input", lambda: ops.weighted_sum([f32, ints], [1, 1]), KernelTypeError, "inputs[1]"),
    ("wsum-complex-input", lambda: ops.weighted_sum([cplx], [1]), KernelTypeError, "inputs[0]"),
    (
        "wsum-non-contiguous",
        lambda: ops.weighted_sum([f32, torch.ones(12)[::2]], [1, 1]),
        KernelArgumentError,
        "inputs[1]",
    ),
    (
        "wsum-out-dtype",
        lambda: ops.weighted_sum([f32], [1], out=torch.empty(6, dtype=torch.float16)),
        KernelTypeError,
        "out",
    ),
    ("wsum-out-size", lambda: ops.weighted_sum([f32], [1], out=torch.empty(7)), KernelArgumentError, "out"),
    (
        "wsum-acc-dtype",
        lambda: ops.weighted_sum([f32], [1], acc_dtype=torch.float16),
        KernelTypeError,
        "acc_dtype",
    ),
    (
        "wsum-mixed-devices",
        lambda: ops.weighted_sum([f32, meta], [1, 1]),
        (KernelArgumentError, KernelTypeError),
        "inputs[1]",
    ),
    ("acc-size", lambda: ops.accumulate_(f32.clone(), torch.ones(5), 1.0), KernelArgumentError, "x"),
    ("acc-fp16-acc", lambda: ops.accumulate_(f32.half(), f32, 1.0), KernelTypeError, "acc"),
    ("acc-int-x", lambda: ops.accumulate_(f32.clone(), ints, 1.0), KernelTypeError, "x"),
    ("acc-weight-nan", lambda: ops.accumulate_(f32.clone(), f32, nan), KernelArgumentError, "weight"),
    (
        "acc-weight-text",
        lambda: ops.accumulate_(f32.clone(), f32, "one"),
        (KernelTypeError, KernelArgumentError),
        "weight",
    ),
    (
        "acc-non-contiguous",
        lambda: ops.accumulate_(torch.ones(12)[::2], f32, 1.0),
        KernelArgumentError,
        "acc",
    ),
    (
        "acc-mixed-devices",
        lambda: ops.accumulate_(f32.clone(), meta, 1.0),
        (KernelArgumentError, KernelTypeError),
        "x",
    ),
    ("mix-size", lambda: ops.mix_(f32.clone(), torch.ones(7), 0.5), KernelArgumentError, "n"),
    ("mix-alpha-inf", lambda: ops.mix_(f32.clone(), f32, inf), KernelArgumentError, "alpha"),
    ("mix-alpha-nan", lambda: ops.mix_(f32.clone(), f32, nan), KernelArgumentError, "alpha"),
    ("mix-int-state", lambda: ops.mix_(ints.clone(), f32, 0.5), KernelTypeError, "s"),
    ("mix-complex-new", lambda: ops.mix_(f32.clone(), cplx, 0.5), KernelTypeError, "n"),
    ("mix-non-contiguous", lambda: ops.mix_(f32.clone(), torch.ones(12)[::2], 0.5), KernelArgumentError, "n"),
    ("mix-mixed-devices", lambda: ops.mix_(meta, f32, 0.5), (KernelArgumentError, KernelTypeError), "n"),
    (
        "pack-counts",
        lambda: ops.pack([f32], [0, 8], [torch.float32], out=torch.empty(64, dtype=torch.uint8)),
        KernelArgumentError,
        "offsets",
    ),
    (
        "pack-out-dtype",
        lambda: ops.pack([f32], [0], [torch.float32], out=torch.empty(24)),
        KernelTypeError,
        "out",
    ),
    (
        "pack-overflow",
        lambda: ops.pack([f32], [4], [torch.float32], out=torch.empty(24, dtype=torch.uint8)),
        KernelArgumentError,
        "tensors[0]",
    ),
    (
        "pack-misaligned",
        lambda: ops.pack([f32], [2], [torch.float32], out=torch.empty(64, dtype=torch.uint8)),
        KernelArgumentError,
        "tensors[0]",
    ),
    (
        "pack-negative",
        lambda: ops.pack([f32], [-4], [torch.float32], out=torch.empty(64, dtype=torch.uint8)),
        KernelArgumentError,
        "tensors[0]",
    ),
]


@pytest.mark.parametrize(("call", "error", "names"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_argument_raises_error_naming_it(backend, call, error, names):
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, FastFLError)
    assert isinstance(info.value, TypeError | ValueError)
    assert names in str(info.value), f"message does not name {names!r}: {info.value}"


def test_rejected_calls_leave_outputs_untouched(backend):
    out = torch.full((6,), 3.0)
    with pytest.raises(KernelArgumentError):
        ops.weighted_sum([f32, f32b], [1.0, nan], out=out)
    with pytest.raises(KernelArgumentError):
        ops.flatten([f32, torch.ones(1)], out=out)
    target = torch.full((6,), 3.0)
    with pytest.raises(KernelArgumentError):
        ops.unflatten_(torch.ones(6), [target], mode="multiply")
    with pytest.raises(KernelArgumentError):
        ops.mix_(target, f32, inf)
    assert torch.equal(out, torch.full((6,), 3.0)) and torch.equal(target, torch.full((6,), 3.0))


def test_unknown_backend_name_is_an_error():
    with pytest.raises(ImportError, match="nope"), ops.using("nope"):
        pass
