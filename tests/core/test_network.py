from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fastfl.core import DistNetwork, NetworkManager
from fastfl.core.network import NetworkConfigError, type2byte
from fastfl.errors import CommunicationError, FastFLError


def test_constructor_does_no_io_and_keeps_fedlab_fields():
    net = DistNetwork(("127.0.0.1", "1234"), 3, 2)
    assert net.address == ("127.0.0.1", 1234) and (net.world_size, net.rank) == (3, 2)
    assert net.send_volume_intotal == net.recv_volume_intotal == 0
    assert not dist.is_initialized()
    assert str(net) == (
        "torch.distributed connection is initializing with ip address 127.0.0.1:1234, rank 2, "
        "world size: 3, backend gloo, ethernet None."
    )


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((("h", "x"), 2, 0), "port must be an integer"),
        ((("h", 70000), 2, 0), "port must be in 1..65535"),
        ((("h", 1), 0, 0), "world_size must be an integer >= 1"),
        ((("h", 1), 2, 2), "rank must be in 0..1"),
        ((("h", 1), 2, -1), "rank must be an integer >= 0"),
        ((("h", 1), 2.5, 0), "world_size must be an integer"),
    ],
)
def test_bad_arguments_name_themselves(args, match):
    with pytest.raises(NetworkConfigError, match=match):
        DistNetwork(*args)


def test_other_settings_are_checked():
    with pytest.raises(ValueError, match="wire must be one of fastfl, fedlab"):
        DistNetwork(("h", 1), 1, 0, wire="mpi")
    with pytest.raises(ValueError, match="timeout must be a positive"):
        DistNetwork(("h", 1), 1, 0, timeout=0)
    with pytest.raises(TypeError, match="wire_dtype"):
        DistNetwork(("h", 1), 1, 0, wire_dtype=torch.int8)


def test_environment_fills_missing_arguments(monkeypatch):
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    net = DistNetwork()
    assert (net.address, net.world_size, net.rank) == (("10.0.0.1", 29500), 4, 3)
    assert DistNetwork(rank=1).rank == 1


def test_missing_environment_is_named(monkeypatch):
    for key in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(NetworkConfigError, match="missing: MASTER_ADDR, MASTER_PORT, RANK"):
        DistNetwork()


def test_type2byte():
    assert type2byte[torch.float32] == 4 and type2byte[torch.int8] == 1 and type2byte[torch.float64] == 8


def test_use_before_init_is_a_clear_error():
    net = DistNetwork(("127.0.0.1", 1), 2, 0)
    with pytest.raises(CommunicationError, match="not initialized"):
        net.send(torch.ones(1), 0, 1)
    with pytest.raises(CommunicationError, match="not initialized"):
        net.recv()
    net.close_network_connection()  # nothing to close: no error


def test_world_of_one_initializes_and_closes(free_port):
    net = DistNetwork(("127.0.0.1", free_port), 1, 0, timeout=30)
    net.init_network_connection()
    try:
        assert dist.is_initialized() and dist.get_world_size() == 1
        with pytest.raises(CommunicationError, match="already initialized"):
            net.init_network_connection()
        with pytest.raises(NetworkConfigError, match="list of ranks"):
            net.broadcast_send(torch.ones(1), 0, dst=1)
        net.broadcast_send(torch.ones(1), 0)  # no other rank: nothing to send
        assert net.broadcast_recv() == []
    finally:
        net.close_network_connection()
    assert not dist.is_initialized()


class _Recorder(NetworkManager):
    def __init__(self, network, fail_in=None):
        super().__init__(network)
        self.calls = []
        self.fail_in = fail_in

    def setup(self):
        self.calls.append("setup")
        if self.fail_in == "setup":
            raise RuntimeError("setup failed")

    def main_loop(self):
        self.calls.append("main_loop")
        if self.fail_in == "main_loop":
            raise RuntimeError("loop failed")

    def shutdown(self):
        self.calls.append("shutdown")


def test_manager_runs_setup_loop_shutdown_in_order():
    manager = _Recorder(None)
    assert isinstance(manager, mp.Process)
    manager.run()
    assert manager.calls == ["setup", "main_loop", "shutdown"]


@pytest.mark.parametrize("stage", ["setup", "main_loop"])
def test_manager_shuts_down_after_an_error(stage):
    manager = _Recorder(None, fail_in=stage)
    with pytest.raises(RuntimeError, match="failed"):
        manager.run()
    assert manager.calls[-1] == "shutdown"


def test_base_manager_main_loop_is_abstract_and_closes_the_network(free_port):
    net = DistNetwork(("127.0.0.1", free_port), 1, 0, timeout=30)
    with pytest.raises(NotImplementedError, match="main_loop"):
        NetworkManager(net).run()
    assert not dist.is_initialized()


def test_errors_are_fastfl_errors():
    with pytest.raises(FastFLError):
        DistNetwork(("h", 1), 2, 5)


def test_core_reexports_like_fedlab_core():
    import importlib

    from fastfl import core

    assert core.communicator.Package is importlib.import_module("fastfl.core.communicator").Package
    assert core.DistNetwork is DistNetwork and core.NetworkManager is NetworkManager
    assert core.client is importlib.import_module("fastfl.core.client")
    assert core.server is importlib.import_module("fastfl.core.server")
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = core.nothing


def test_receive_limits_reach_the_processor():
    net = DistNetwork(("127.0.0.1", 1), 2, 0, max_message_bytes=1 << 20, max_tensors=10)
    assert (net.processor.max_message_bytes, net.processor.max_tensors) == (1 << 20, 10)
    with pytest.raises(NetworkConfigError, match="max_tensors must be a positive integer"):
        DistNetwork(("127.0.0.1", 1), 2, 0, max_tensors=0)
