from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fastfl import ops
from fastfl.utils import SerializationTool as ST


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 5),
        nn.BatchNorm1d(5),
        nn.Linear(5, 3),
    )


def param_vector(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def randomize(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(torch.randn_like(t))
            else:
                t.fill_(7)
    return model


def test_serialize_is_the_concatenation_of_parameters(backend):
    model = randomize(small_cnn())
    flat = ST.serialize_model(model)
    assert flat.device.type == "cpu" and flat.dtype == torch.float32
    assert torch.equal(flat, param_vector(model))
    assert torch.equal(flat, nn.utils.parameters_to_vector(model.parameters()))


def test_deserialize_copy_add_sub(backend):
    model = randomize(small_cnn())
    before = param_vector(model)
    vec = torch.randn_like(before)
    ST.deserialize_model(model, vec, mode="add")
    torch.testing.assert_close(param_vector(model), before + vec)
    ST.deserialize_model(model, vec, mode="sub")
    torch.testing.assert_close(param_vector(model), before)
    ST.deserialize_model(model, vec)  # copy is the default
    assert torch.equal(param_vector(model), vec)


def test_results_equal_fedlab(backend):
    fedlab_utils = pytest.importorskip("fedlab.utils")
    model = randomize(small_cnn())
    assert torch.equal(ST.serialize_model(model), fedlab_utils.SerializationTool.serialize_model(model))
    twin = randomize(small_cnn())
    twin.load_state_dict(model.state_dict())
    vec = torch.randn(param_vector(model).numel())
    for mode in ("copy", "add"):
        ST.deserialize_model(model, vec, mode=mode)
        fedlab_utils.SerializationTool.deserialize_model(twin, vec, mode=mode)
        assert torch.equal(param_vector(model), param_vector(twin))
    model(torch.randn(4, 3, 8, 8)).sum().backward()
    ours = ST.serialize_model_gradients(model)
    assert torch.equal(ours, fedlab_utils.SerializationTool.serialize_model_gradients(model))


def test_one_kernel_call_per_direction(monkeypatch):
    """Each direction is one compiled call: the layout's plan, or one ops kernel when there is none."""
    from fastfl.utils import serialization

    model = small_cnn()
    calls = {"flatten": 0, "unflatten_": 0}
    for module, names in (
        (ops, ("flatten", "unflatten_")),
        (serialization, ("_plan_flatten", "_plan_unflatten")),
    ):
        for name, key in zip(names, calls, strict=True):
            real = getattr(module, name)

            def counting(*args, _real=real, _key=key, **kwargs):
                done = _real(*args, **kwargs)
                calls[_key] += done is not False  # a plan that declines did no work
                return done

            monkeypatch.setattr(module, name, counting)
    for _ in range(3):  # the first call builds the layout, the next ones use its plan
        calls.update(flatten=0, unflatten_=0)
        flat = ST.serialize_model(model, include_buffers=True)
        ST.deserialize_model(model, flat, mode="add", include_buffers=True)
        assert calls == {"flatten": 1, "unflatten_": 1}


def test_length_mismatch_is_a_value_error():
    model = small_cnn()
    n = param_vector(model).numel()
    with pytest.raises(ValueError, match=f"{n + 1} elements .* hold {n}"):
        ST.deserialize_model(model, torch.zeros(n + 1))
    with pytest.raises(ValueError, match=f"{n - 1} elements"):
        ST.deserialize_model(model, torch.zeros(n - 1))


def test_bad_mode_and_bad_arguments():
    model = small_cnn()
    flat = ST.serialize_model(model)
    with pytest.raises(ValueError, match="mode must be one of 'copy', 'add', 'sub', got 'mul'"):
        ST.deserialize_model(model, flat, mode="mul")
    with pytest.raises(ValueError, match="mode"):  # FedLab never raised for a model without params
        ST.deserialize_model(nn.ReLU(), torch.zeros(0), mode="mul")
    with pytest.raises(TypeError, match=r"serialized_parameters must be a torch\.Tensor"):
        ST.deserialize_model(model, flat.tolist())
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        ST.serialize_model([torch.zeros(3)])


def test_out_buffer_is_reused_and_checked(backend):
    model = randomize(small_cnn())
    n = param_vector(model).numel()
    out = torch.empty(n)
    assert ST.serialize_model(model, out=out) is out
    assert torch.equal(out, param_vector(model))
    half = ST.serialize_model(model, out=torch.empty(n, dtype=torch.float16))
    assert torch.equal(half, param_vector(model).half())
    with pytest.raises(ValueError, match=f"1-D tensor of {n} elements"):
        ST.serialize_model(model, out=torch.empty(n + 1))
    with pytest.raises(ValueError, match="1-D"):
        ST.serialize_model(model, out=torch.empty(1, n))
    with pytest.raises(TypeError, match="floating dtype"):
        ST.serialize_model(model, out=torch.empty(n, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"out must be a torch\.Tensor"):
        ST.serialize_model(model, out=[0.0] * n)


def test_dtype_option_and_mixed_dtypes(backend):
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].half()
    flat = ST.serialize_model(model)
    assert flat.dtype == torch.float32  # promotion of float16 and float32, as torch.cat does
    assert torch.equal(flat, torch.cat([p.detach().float().reshape(-1) for p in model.parameters()]))
    assert ST.serialize_model(model, dtype=torch.float64).dtype == torch.float64
    with pytest.raises(TypeError, match=r"dtype must be None or one of"):
        ST.serialize_model(model, dtype=torch.int32)
    with pytest.raises(TypeError, match=r"dtype must be None or one of"):
        ST.serialize_model_gradients(model, dtype="float16")
    ST.deserialize_model(model, torch.arange(flat.numel(), dtype=torch.float64))
    assert model[0].weight.dtype == torch.float16
    assert torch.equal(ST.serialize_model(model), torch.arange(flat.numel(), dtype=torch.float32))


def test_include_buffers_order_and_round_trip(backend):
    src = randomize(small_cnn())
    flat = ST.serialize_model(src, include_buffers=True)
    params = param_vector(src)
    assert torch.equal(flat[: params.numel()], params)  # parameters first: FedLab's vector is a prefix
    bns = [src[1], src[5]]
    floats = torch.cat([t.reshape(-1) for bn in bns for t in (bn.running_mean, bn.running_var)])
    counts = torch.stack([bn.num_batches_tracked for bn in bns]).float()
    assert torch.equal(flat[params.numel() :], torch.cat([floats, counts]))
    dst = small_cnn()
    ST.deserialize_model(dst, flat, include_buffers=True)
    for key, value in src.state_dict().items():
        assert torch.equal(dst.state_dict()[key], value), key
    assert dst[1].num_batches_tracked.dtype == torch.int64


def test_include_buffers_add_sub_leave_integer_buffers(backend):
    model = randomize(small_cnn())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    delta = torch.ones(ST.serialize_model(model, include_buffers=True).numel())
    ST.deserialize_model(model, delta, mode="add", include_buffers=True)
    after = model.state_dict()
    for key, value in before.items():
        if key.endswith("num_batches_tracked"):
            assert torch.equal(after[key], value), key
        else:
            torch.testing.assert_close(after[key], value + 1), key
    ST.deserialize_model(model, delta, mode="sub", include_buffers=True)
    for key, value in before.items():
        torch.testing.assert_close(model.state_dict()[key], value)


def test_non_persistent_buffers_are_left_out():
    model = nn.Linear(2, 2)
    model.register_buffer("scratch", torch.ones(5), persistent=False)
    model.register_buffer("kept", torch.full((3,), 2.0))
    flat = ST.serialize_model(model, include_buffers=True)
    assert flat.numel() == 6 + 3
    assert torch.equal(flat[-3:], torch.full((3,), 2.0))


def test_gradients_missing_and_zero_missing(backend):
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"parameter '0.weight' has no gradient .*zero_missing=True"):
        ST.serialize_model_gradients(model)
    model[1](torch.randn(5, 4)).sum().backward()  # only the second layer gets gradients
    grads = ST.serialize_model_gradients(model, zero_missing=True)
    assert torch.equal(grads[: 3 * 4 + 4], torch.zeros(16))
    expected = torch.cat([model[1].weight.grad.reshape(-1), model[1].bias.grad])
    assert torch.equal(grads[16:], expected)
    out = torch.empty(grads.numel())
    assert ST.serialize_model_gradients(model, zero_missing=True, out=out) is out


def test_channels_last_parameters(backend):
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 2, 1)).to(memory_format=torch.channels_last)
    assert not model[0].weight.is_contiguous()
    flat = ST.serialize_model(model)
    assert torch.equal(flat, param_vector(model))
    vec = torch.randn_like(flat)
    ST.deserialize_model(model, vec)
    assert torch.equal(param_vector(model), vec)
    assert not model[0].weight.is_contiguous()  # the memory format is kept


def test_tied_parameters_count_once():
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    model[1].weight = model[0].weight
    assert ST.serialize_model(model).numel() == 16


def test_empty_model():
    model = nn.ReLU()
    flat = ST.serialize_model(model)
    assert flat.shape == (0,) and flat.dtype == torch.float32
    ST.deserialize_model(model, flat, mode="add")


def test_deserialize_does_not_touch_autograd():
    model = nn.Linear(3, 2)
    ST.deserialize_model(model, torch.ones(8))
    assert model.weight.requires_grad and model.weight.grad_fn is None
    assert not ST.serialize_model(model).requires_grad


@settings(max_examples=25, deadline=None)
@given(
    shapes=st.lists(st.lists(st.integers(0, 5), min_size=0, max_size=3), min_size=0, max_size=8),
    mode=st.sampled_from(["copy", "add", "sub"]),
)
def test_round_trip_over_random_shapes(shapes, mode):
    model = nn.Module()
    for i, shape in enumerate(shapes):
        model.register_parameter(f"p{i}", nn.Parameter(torch.randn(shape)))
    before = param_vector(model) if shapes else torch.zeros(0)
    assert torch.equal(ST.serialize_model(model), before)
    vec = torch.randn(before.numel())
    ST.deserialize_model(model, vec, mode=mode)
    expected = {"copy": vec, "add": before + vec, "sub": before - vec}[mode]
    assert torch.equal(ST.serialize_model(model), expected)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_model_gives_cpu_vector_and_takes_one():
    model = small_cnn().cuda()
    flat = ST.serialize_model(model)
    assert flat.device.type == "cpu"
    ST.deserialize_model(model, flat * 2)
    torch.testing.assert_close(ST.serialize_model(model), flat * 2)
    out = torch.empty_like(flat)
    assert ST.serialize_model(model, out=out) is out
