"""SerialTrainer and SubsetSerialTrainer: many clients trained one after another in one process."""

from __future__ import annotations

import logging
import numbers
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

from fastfl import ops
from fastfl.core._updates import counts_meta
from fastfl.core.client import SERIAL_TRAINER
from fastfl.core.client._batches import SubsetBatches, as_index_tensor
from fastfl.core.client._fused import FusedSGD, fused_sgd
from fastfl.core.client._mode import AUTO, ModeChooser
from fastfl.core.client._vectorized import VectorizedSGD, train_clients
from fastfl.core.client.trainer import ClientTrainer
from fastfl.core.communicator.buffers import HostBlock
from fastfl.core.model_maintainer import bind_flat_, read_params, write_params_

__all__ = ["SerialTrainer", "SubsetSerialTrainer"]


class SerialTrainer(ClientTrainer):
    """Train K clients in sequence with one model, all starting from the same global parameters.

    Subclasses implement `_get_dataloader(client_id)` and `_train_alone(model_parameters,
    train_loader)`. `local_process` returns, and `uplink_package` then is, FedLab's list of one
    parameter vector per trained client. The vectors are rows of a buffer that a later round
    reuses only when nothing outside the trainer holds any of them any more, so vectors that user
    code keeps stay valid, and a loop that drops them pays no new allocation. The clients' sample
    counts go in `uplink_meta` (package metadata), not in the upload.

    Args:
        model: the model every client trains (not copied).
        client_num: how many clients this process simulates.
        cuda: train on a CUDA device.
        logger: where to log (default: the ``fastfl.client`` logger), kept as `_LOGGER`.
        aggregate: average the clients locally, weighted by sample count, and upload one vector
            for all of them instead of K (the server must then weight FedAvg by sample counts).
        report_samples: report the clients' sample counts in `uplink_meta`.
    """

    _POOL = 2  # row buffers kept: the one user code may still hold, and the one being filled

    def __init__(
        self,
        model: nn.Module,
        client_num: int,
        cuda: bool = False,
        logger: Any = None,
        *,
        aggregate: bool = False,
        report_samples: bool = True,
    ):
        super().__init__(model, cuda)
        if int(client_num) != client_num or client_num < 1:
            raise ValueError(f"client_num must be an integer >= 1, got {client_num!r}")
        self.client_num = int(client_num)
        self.type = SERIAL_TRAINER
        self._LOGGER = logger if logger is not None else logging.getLogger("fastfl.client")
        self.aggregate = aggregate
        self.report_samples = report_samples or aggregate
        self.param_list: list[Tensor] = []
        self.sample_counts: list[int] = []
        self.losses: list[float] = []
        self._row_pool: list[HostBlock] = []
        self._flat = bind_flat_(self._model)

    def _load_params_(self, model_parameters: Tensor) -> None:
        """Copy the global parameters into the model (one copy when the parameters are flat-bound)."""
        if self._flat is not None and self._flat.numel() == model_parameters.numel():
            self._flat.copy_(model_parameters.reshape(-1))
        else:
            write_params_(self._model, model_parameters)

    def _read_params(self, out: Tensor) -> Tensor:
        """Copy the model's parameters into `out` (a 1-D buffer)."""
        if self._flat is not None and self._flat.numel() == out.numel():
            return out.copy_(self._flat)
        return read_params(self._model, out=out)

    @property
    def uplink_package(self) -> list[Tensor]:
        """`param_list`: the trained clients' parameter vectors (or their weighted mean with `aggregate`)."""
        return self.param_list

    @property
    def uplink_meta(self) -> dict[str, int | float]:
        """The sample counts behind `uplink_package` (see `fastfl.core._updates`), {} when not reported."""
        if not self.report_samples or not self.sample_counts:
            return {}
        return counts_meta(self.sample_counts, aggregated=self.aggregate)

    def _get_dataloader(self, client_id: int) -> Iterable[tuple[Tensor, Tensor]]:
        raise NotImplementedError(f"{type(self).__name__} must define _get_dataloader(client_id)")

    def _train_alone(self, model_parameters: Tensor, train_loader: Iterable[tuple[Tensor, Tensor]]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define _train_alone(model_parameters, loader)")

    def _sample_count(self, train_loader: Any) -> int | None:
        count = getattr(train_loader, "num_samples", None)
        if count is None and hasattr(train_loader, "sampler"):
            count = len(train_loader.sampler)
        return None if count is None else int(count)

    def _model_dtype(self) -> torch.dtype:
        return next((p.dtype for p in self._model.parameters()), torch.float32)

    def _row_buffer(self, rows: int, numel: int) -> Tensor:
        """A [rows, numel] buffer for this round's vectors, in memory nothing outside holds any more.

        The memory is a pooled `HostBlock` whose handed-out tensors (and every view of them) are
        watched, so a block is reused only after user code dropped every vector of its round.
        """
        self.param_list = []
        dtype = self._model_dtype()
        nbytes = rows * numel * dtype.itemsize
        block = next((b for b in self._row_pool if b.nbytes >= nbytes and b.free()), None)
        if block is None:
            block = HostBlock(nbytes)
            self._row_pool = [*self._row_pool[-(self._POOL - 1) :], block]
        return block.tensor(nbytes).view(dtype).view(rows, numel)

    def local_process(self, id_list: Sequence[int], payload: list[Tensor]) -> list[Tensor]:
        """Train the clients in `id_list` (local ids, in the given order) from ``payload[0]``.

        Returns:
            The list of trained parameter vectors (or the one weighted mean with `aggregate`).
        """
        ids = [int(i) for i in id_list]
        for i in ids:
            if not 0 <= i < self.client_num:
                raise ValueError(f"client id {i} is out of range for this trainer (0..{self.client_num - 1})")
        model_parameters = payload[0]
        self._LOGGER.info(f"Local training with client id list: {ids}")
        numel = model_parameters.numel()
        rows = self._row_buffer(1 if self.aggregate else len(ids), numel)
        counts: list[int] = []
        self.losses = []
        if self.aggregate:
            acc = ops.empty(numel).zero_()  # huge-page-advised or pooled when large, like the rows
        for k, idx in enumerate(ids):
            self._LOGGER.debug(f"Starting training procedure of client [{idx}]")
            loader = self._get_dataloader(client_id=idx)
            self._train_alone(model_parameters, loader)
            n = self._sample_count(loader)
            counts.append(n if n is not None else 1)
            if self.aggregate:
                ops.accumulate_(acc, self._read_params(rows[0]), float(counts[-1]))
            else:
                self._read_params(rows[k])
        if self.aggregate:
            total = float(sum(counts))
            rows[0].copy_(acc.mul_(1.0 / total) if total > 0 else acc)
            self.param_list = [rows[0]]
        else:
            self.param_list = [rows[k] for k in range(len(ids))]
        self.sample_counts = counts
        return self.param_list


class SubsetSerialTrainer(SerialTrainer):
    """Serial trainer over subsets of one data set, with plain SGD and cross-entropy per client.

    Each client gets a fresh SGD (no momentum, no state carried between clients or rounds), as in
    FedLab 1.2.1. Batches come from `SubsetBatches`: one gather per epoch for a TensorDataset, and
    a new order every epoch, drawn from a per-client generator when `seed` is given (so a client
    sees the same orders whichever process trains it).

    Args:
        model: the model (not copied).
        dataset: the whole training set.
        data_slices: per local client id, its sample indices (a list, or a dict {id: indices}).
        logger: where to log.
        cuda: train on a CUDA device.
        args: ``{"epochs": 5, "batch_size": 100, "lr": 0.1}``; "shuffle" (default True) may be added.
        seed: seed of per-client shuffling, a new order every epoch (None: FedLab's order, see
            `_get_dataloader`).
        id_offset: global id of local client 0 (only used to derive per-client seeds).
        aggregate: see `SerialTrainer`.
        report_samples: see `SerialTrainer`.
        batch_clients: train up to this many clients at once as one vmapped computation (clients
            grouped by sample count, so equal batch shapes; results equal the one-at-a-time path
            up to float rounding). None: one client at a time. "auto" (default): time both modes
            on the first rounds and keep the faster (see `_mode.py`). Vmapping needs a
            `TensorDataset` of (inputs, labels) and a model whose forward runs under
            `torch.func.vmap`; otherwise the trainer trains one client at a time (and logs why
            when an int asked for vmapping).
        fused: in the batched mode, train an `nn.Sequential` of Linear/ReLU layers (optionally
            Flatten first, or a bare Linear) with fp32 CPU parameters, cross-entropy and plain SGD
            by a hand-fused step without autograd or torch.func (same results up to float
            rounding, see `_fused.py`); False: always vmap with torch.func. Other models always
            use torch.func. `batch_clients=None` never uses it.
    """

    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset,
        data_slices: Sequence[Sequence[int]] | Mapping[int, Sequence[int]],
        logger: Any = None,
        cuda: bool = False,
        args: dict[str, Any] | None = None,
        *,
        seed: int | None = None,
        id_offset: int = 0,
        aggregate: bool = False,
        report_samples: bool = True,
        batch_clients: int | str | None = AUTO,
        fused: bool = True,
    ):
        super().__init__(
            model, len(data_slices), cuda, logger, aggregate=aggregate, report_samples=report_samples
        )
        self._mode = ModeChooser() if batch_clients == AUTO else None
        if batch_clients is not None and self._mode is None:
            if isinstance(batch_clients, bool) or not isinstance(batch_clients, numbers.Integral):
                raise TypeError(
                    f"batch_clients must be 'auto', None (one client at a time) or an int >= 1, got {batch_clients!r}"
                )
            if batch_clients < 1:
                raise ValueError(f"batch_clients must be an int >= 1 (or None), got {batch_clients!r}")
        self.batch_clients = batch_clients if batch_clients is None or self._mode else int(batch_clients)
        if not isinstance(fused, bool):
            raise TypeError(f"fused must be True or False, got {fused!r}")
        self.fused = fused
        self._vectorized: VectorizedSGD | FusedSGD | None = None
        self._fallback_reason: str | None = None
        self._fallback_logged = False
        self.dataset = dataset
        self.data_slices = data_slices
        self.args = {"epochs": 5, "batch_size": 100, "lr": 0.1, **(args or {})}
        for key in ("epochs", "batch_size"):
            value = self.args[key]
            if int(value) != value or value < (0 if key == "epochs" else 1):
                raise ValueError(f"args[{key!r}] must be a positive integer, got {value!r}")
        self.seed = seed
        self.id_offset = id_offset
        self._indices: dict[int, Tensor] = {}
        self._orders: dict[int, list[int]] = {}
        self._uses: dict[int, int] = {}
        self._criterion = nn.CrossEntropyLoss()
        self._optimizer: torch.optim.SGD | None = None

    def _sgd(self) -> torch.optim.SGD:
        """Plain SGD (no momentum, so no state: equivalent to FedLab's new optimizer per client)."""
        lr = self.args["lr"]
        if self._optimizer is None or self._optimizer.param_groups[0]["lr"] != lr:
            self._optimizer = torch.optim.SGD(self._model.parameters(), lr=lr)
        return self._optimizer

    def _client_generator(self, client_id: int) -> torch.Generator | None:
        if self.seed is None:
            return None
        use = self._uses.get(client_id, 0)
        self._uses[client_id] = use + 1
        key = (self.seed * 1_000_003 + self.id_offset + client_id) * 7919 + use
        return torch.Generator().manual_seed(key % (2**63))

    def _get_dataloader(self, client_id: int) -> SubsetBatches:
        """This round's batches of client `client_id` (a local id).

        Without `seed`, the order is FedLab's: the client's indices shuffled once per round with
        Python's global `random` (continuing from the last round's order, as FedLab's in-place
        shuffle does, but on a private copy), the same order in every epoch, and one draw of
        torch's global generator per epoch (as a DataLoader makes). With `seed`, a new order every
        epoch from the client's own generator.
        """
        batch_size = int(self.args["batch_size"])
        shuffle = bool(self.args.get("shuffle", True))
        if self.seed is None and shuffle:
            order = self._orders.get(client_id)
            if order is None:
                order = self._orders[client_id] = self._get_indices(client_id).tolist()
            random.shuffle(order)
            return _FedLabOrder(
                self.dataset, torch.tensor(order, dtype=torch.int64), batch_size, shuffle=False
            )
        return SubsetBatches(
            self.dataset,
            self._get_indices(client_id),
            batch_size,
            shuffle=shuffle,
            generator=self._client_generator(client_id),
        )

    def _train_alone(self, model_parameters: Tensor, train_loader: Iterable[tuple[Tensor, Tensor]]) -> None:
        self._load_params_(model_parameters)
        optimizer = self._sgd()
        self._model.train()
        device = self.gpu if self.cuda else None
        loss_sum, steps = torch.zeros(()), 0
        for _ in range(int(self.args["epochs"])):
            for inputs, labels in train_loader:
                if device is not None:
                    inputs, labels = inputs.to(device), labels.to(device)
                loss = self._criterion(self._model(inputs), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach().to("cpu", non_blocking=True)
                steps += 1
        self.losses.append(float(loss_sum) / steps if steps else float("nan"))

    def _vectorize_reason(self, ids: list[int]) -> str | None:
        """Why the clients in `ids` cannot be trained vmapped (None: they can)."""
        data = self.dataset
        if not isinstance(data, TensorDataset) or len(data.tensors) != 2:
            return "the dataset is not a TensorDataset of (inputs, labels)"
        if self._fallback_reason is not None:
            return self._fallback_reason
        if self._vectorized is None and self.fused:
            self._vectorized = fused_sgd(self._model, self._criterion, data.tensors, self.cuda)
        if self._vectorized is None:
            self._model.train()
            self._vectorized = VectorizedSGD(self._model)
            sample = next((self._get_indices(i) for i in ids if len(self._get_indices(i))), None)
            if sample is not None:
                sample = sample[: int(self.args["batch_size"])]
                x, y = data.tensors[0][sample], data.tensors[1][sample]
                if self.cuda:
                    x, y = x.to(self.gpu), y.to(self.gpu)
                reason = self._vectorized.supports(x, y)
                if reason is not None:
                    self._fallback_reason = f"the model's forward cannot run under vmap ({reason})"
                    self._vectorized = None
                    return self._fallback_reason
        return None

    def _get_indices(self, client_id: int) -> Tensor:
        if client_id not in self._indices:
            self._indices[client_id] = as_index_tensor(
                self.data_slices[client_id], f"data_slices[{client_id}]"
            )
        return self._indices[client_id]

    def local_process(self, id_list: Sequence[int], payload: list[Tensor]) -> list[Tensor]:
        """Train the clients in `id_list` from ``payload[0]``, vmapped in groups with `batch_clients`.

        Returns:
            The list of trained parameter vectors (or the one weighted mean with `aggregate`).
        """
        if self._mode is None:
            return self._process_as(self.batch_clients, id_list, payload)
        ids = [int(i) for i in id_list]
        if not all(0 <= i < self.client_num for i in ids):  # the chosen path raises the error
            return self._process_as(None, ids, payload)
        if not self._mode.decided and self._vectorize_reason(ids) is not None:
            self._mode.force_serial()
        units = sum(len(self._get_indices(i)) for i in ids) * int(self.args["epochs"])
        return self._mode.run(self._process_as, ids, payload, units)

    def _process_as(
        self, batch_clients: int | None, id_list: Sequence[int], payload: list[Tensor]
    ) -> list[Tensor]:
        if batch_clients is None:
            return super().local_process(id_list, payload)
        ids = [int(i) for i in id_list]
        for i in ids:
            if not 0 <= i < self.client_num:
                raise ValueError(f"client id {i} is out of range for this trainer (0..{self.client_num - 1})")
        reason = self._vectorize_reason(ids)
        if reason is not None:
            log = self._LOGGER.debug if self._fallback_logged else self._LOGGER.warning
            log(f"batch_clients: training one client at a time because {reason}")
            self._fallback_logged = True
            return super().local_process(ids, payload)
        self._LOGGER.info(f"Local training (vmapped, up to {batch_clients} at once) of clients: {ids}")
        return self._vectorized_process(ids, payload[0], batch_clients)

    def _vectorized_process(
        self, ids: list[int], model_parameters: Tensor, chunk: int | None = None
    ) -> list[Tensor]:
        chunk = self.batch_clients if chunk is None else chunk  # subclasses call it without one
        epochs = int(self.args["epochs"])
        orders = []  # drawn in id order, as the one-at-a-time path draws them
        for idx in ids:
            loader = self._get_dataloader(idx)
            orders.append([loader._order() for _ in range(epochs)])
        counts = [len(self._indices[idx]) for idx in ids]
        rows = self._row_buffer(1 if self.aggregate else len(ids), model_parameters.numel())
        losses = train_clients(
            self._vectorized,
            model_parameters.reshape(-1),
            self.dataset.tensors,
            orders,
            counts,
            rows,
            batch_size=int(self.args["batch_size"]),
            lr=float(self.args["lr"]),
            chunk=chunk,
            aggregate=self.aggregate,
        )
        self.param_list = [rows[0]] if self.aggregate else [rows[k] for k in range(len(ids))]
        self.sample_counts = counts
        self.losses = losses.tolist()
        return self.param_list


class _FedLabOrder(SubsetBatches):
    """A fixed order for all epochs; each epoch draws once from torch's global generator, as a DataLoader does.

    The draw is in `_order`, which both the one-at-a-time path (once per epoch, in `__iter__`) and
    the vmapped path (once per client and epoch, in id order) call, so both leave torch's
    generator where FedLab's DataLoader leaves it.
    """

    def _order(self) -> Tensor:
        if self._tensors is not None:  # the other path iterates a real DataLoader, which draws itself
            torch.empty((), dtype=torch.int64).random_()
        return super()._order()
