from __future__ import annotations

import pytest
import torch
from torch import nn

from fastfl.core.model_maintainer import ModelMaintainer, read_params, write_params_


def _mlp():
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def test_model_is_shared_not_copied():
    model = _mlp()
    mm = ModelMaintainer(model, cuda=False)
    assert mm.model is model
    with torch.no_grad():
        model[0].weight.fill_(3.0)
    assert mm.model_parameters[:12].eq(3.0).all()


def test_model_parameters_is_fresh_flat_cpu_copy_in_order():
    model = _mlp()
    mm = ModelMaintainer(model)
    flat = mm.model_parameters
    expected = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    torch.testing.assert_close(flat, expected)
    flat.zero_()
    assert not torch.equal(mm.model_parameters, flat)
    assert mm.shape_list == [p.shape for p in model.parameters()]
    assert mm.num_params == expected.numel()


def test_model_gradients_after_backward_and_error_before():
    model = _mlp()
    mm = ModelMaintainer(model)
    with pytest.raises(ValueError, match="gradient"):
        _ = mm.model_gradients
    model(torch.randn(5, 4)).sum().backward()
    expected = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    torch.testing.assert_close(mm.model_gradients, expected)


def test_write_params_copy_and_add_and_length_check():
    model = _mlp()
    n = sum(p.numel() for p in model.parameters())
    write_params_(model, torch.ones(n))
    assert read_params(model).eq(1).all()
    write_params_(model, torch.ones(n), mode="add")
    assert read_params(model).eq(2).all()
    with pytest.raises(ValueError, match="elements"):
        write_params_(model, torch.ones(n + 1))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_device_is_a_clear_error():
    with pytest.raises(RuntimeError, match="cuda=False"):
        ModelMaintainer(_mlp(), cuda=True)


def test_non_module_rejected():
    with pytest.raises(TypeError, match=r"nn\.Module"):
        ModelMaintainer(torch.zeros(3))
