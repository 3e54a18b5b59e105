"""The base of the algorithm trainers: flat parameters and gradients, per-client flat state.

`AlgorithmSerialTrainer` trains clients one after another like `SubsetSerialTrainer`, but on one
flat float32 parameter buffer and one flat gradient buffer that the model's parameters and
``.grad`` are views of, so an algorithm's step (`fastfl.ops.optim.local_step_`) is one pass over
memory. Per-client state (SCAFFOLD's c_i, FedDyn's grad L_k, Ditto's personal model) lives in
`ClientBank`s: one [clients, numel] tensor each, allocated on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from fastfl.contrib.algorithm._bank import ClientBank
from fastfl.contrib.algorithm._uplink import make_uplink
from fastfl.core.client._batches import SubsetBatches
from fastfl.core.client.serial_trainer import SubsetSerialTrainer
from fastfl.ops import optim

__all__ = ["AlgorithmSerialTrainer"]


class AlgorithmSerialTrainer(SubsetSerialTrainer):
    """Serial trainer of an FL algorithm (subclasses fill in the hooks); FedAvg's local SGD as is.

    Args:
        model: the model (float32 parameters; not copied).
        dataset: the whole training set.
        data_slices: per local client id, its sample indices.
        logger: where to log.
        cuda: train on a CUDA device.
        args: ``{"epochs": 5, "batch_size": 100, "lr": 0.1}`` (plus "shuffle").
        seed: seed of the per-client shuffling (None: torch's global generator).
        id_offset: global id of local client 0 (for per-client seeds).
        batch_clients: vmapped training of up to this many clients at once, for the algorithms
            whose local step is plain SGD with cross-entropy (FedAvg, FedNova, q-FedAvg,
            FedAvgM/FedOpt, FedBuff); the others log why and train one client at a time. "auto":
            time both modes on the first rounds and keep the faster (as the core trainers).
        criterion: the loss (default cross-entropy).
        local_epochs: a function client id -> epochs for this round (stragglers, unequal local
            work); None: ``args["epochs"]`` for everyone.
        fused: in the batched mode, train Linear/ReLU models with the hand-fused step (as
            `SubsetSerialTrainer`); False: always torch.func.
    """

    fields = 1  # vectors per client in the uplink
    width = 1  # numbers per client in the uplink's info tensor (the sample count first)
    plain_sgd = True  # the local step is plain SGD: batch_clients may vmap it

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
        batch_clients: int | str | None = None,
        criterion: nn.Module | None = None,
        local_epochs: Callable[[int], int] | None = None,
        fused: bool = True,
    ):
        super().__init__(
            model, dataset, data_slices, logger, cuda, args, seed=seed, id_offset=id_offset,
            batch_clients=batch_clients, fused=fused,
        )  # fmt: skip
        if self._flat is None or self._flat.dtype != torch.float32:
            raise TypeError("fastfl.contrib.algorithm trainers need a model whose parameters are all float32")
        self._custom_criterion = criterion is not None  # the vmapped step is cross-entropy only
        if criterion is not None:
            self._criterion = criterion
        self.local_epochs = local_epochs
        self._grad = torch.zeros_like(self._flat)
        self._bind_grads()
        self.steps: list[int] = []
        self.client_ids: list[int] = []  # the clients of `param_list`, in its order
        self._uplink: list[Tensor] = []
        self._scratch = torch.empty(0)
        self.round = 0

    def _bind_grads(self) -> None:
        """Make every parameter's ``.grad`` a view of the flat gradient (again, if user code reset it)."""
        offset = 0
        for p in self._model.parameters():
            view = self._grad[offset : offset + p.numel()]
            if p.grad is None or p.grad.data_ptr() != view.data_ptr():
                p.grad = view.view_as(p)
            offset += p.numel()

    # ---- hooks for the algorithms -------------------------------------------------------------

    def _receive(self, payload: Sequence[Tensor]) -> Tensor:
        """Read the downlink; return the global parameters (flat float32 on the training device)."""
        return payload[0].reshape(-1).to(self._flat.device, torch.float32)

    def _before_client(self, client: int, x: Tensor) -> None:
        """Called for each client before its training (the model does not hold x yet)."""

    def _train_client(self, client: int, x: Tensor, loader: Iterable, epochs: int) -> tuple[int, int]:
        """Train one client from x (already loaded); return (steps, samples seen in an epoch)."""
        return self._sgd(loader, epochs, float(self.args["lr"]))

    def _client_info(self, k: int, client: int, x: Tensor, row: Tensor) -> list[float]:
        """The scalars after n_k in client k's info row (called after `_client_vectors`)."""
        return []

    def _client_vectors(self, k: int, client: int, x: Tensor, row: Tensor) -> list[Tensor]:
        """Client k's uplink vectors (default: its trained parameters, `row`, which it may rewrite)."""
        return [row]

    # ---- the machinery -------------------------------------------------------------------------

    def _sgd(
        self,
        loader: Iterable,
        epochs: int,
        lr: float,
        *,
        anchor: Tensor | None = None,
        mu: float = 0.0,
        lin: Tensor | None = None,
    ) -> tuple[int, int]:
        """`epochs` passes of w -= lr (grad + mu (w - anchor) + lin); return (steps, samples per epoch)."""
        self._bind_grads()  # backward accumulates into the flat gradient in place
        self._model.train()
        device = self.gpu if self.cuda else None
        loss_sum, steps, seen = torch.zeros(()), 0, 0
        for epoch in range(epochs):
            for inputs, labels in loader:
                if device is not None:
                    inputs, labels = inputs.to(device), labels.to(device)
                self._grad.zero_()
                loss = self._criterion(self._model(inputs), labels)
                loss.backward()
                optim.local_step_(self._flat, self._grad, lr, anchor=anchor, mu=mu, lin=lin)
                loss_sum += loss.detach().to("cpu")
                steps += 1
                if epoch == 0:
                    seen += len(labels)
        self.losses.append(float(loss_sum) / steps if steps else float("nan"))
        return steps, seen

    def _epochs(self, client: int) -> int:
        if self.local_epochs is None:
            return int(self.args["epochs"])
        epochs = self.local_epochs(client)
        if int(epochs) != epochs or epochs < 0:
            raise ValueError(f"local_epochs({client}) returned {epochs!r}; expected an integer >= 0")
        return int(epochs)

    def _steps_per_epoch(self, client: int) -> int:
        n, b = len(self._get_indices(client)), int(self.args["batch_size"])
        return (n + b - 1) // b

    def _scratch_like(self, x: Tensor) -> Tensor:
        if self._scratch.numel() != x.numel() or self._scratch.device != x.device:
            self._scratch = torch.empty_like(x, dtype=torch.float32)
        return self._scratch

    def local_process(self, id_list: Sequence[int], payload: list[Tensor]) -> list[Tensor]:
        """Train the clients in `id_list` (local ids) from the downlink `payload`; build the uplink.

        Returns:
            The trained parameter vectors, one per client (rows of a buffer reused next round).
        """
        ids = [int(i) for i in id_list]
        for i in ids:
            if not 0 <= i < self.client_num:
                raise ValueError(f"client id {i} is out of range for this trainer (0..{self.client_num - 1})")
        self.client_ids = ids
        x = self._receive(payload)
        for idx in ids:
            self._before_client(idx, x)
        why = self._why_one_by_one(ids)
        if self._mode is not None:  # batch_clients="auto": time both modes, keep the faster
            if why is not None and not self._mode.decided:
                self._mode.force_serial()
            units = sum(len(self._get_indices(i)) for i in ids) * int(self.args["epochs"])
            self._mode.run(self._train_round, ids, [x], units)
        elif why is None:
            self._train_round(int(self.batch_clients), ids, [x])  # type: ignore[arg-type]
        else:
            if self.batch_clients is not None and not self._fallback_logged:
                self._logger.warning(
                    f"batch_clients: {type(self).__name__} trains one client at a time: {why}"
                )
                self._fallback_logged = True
            self._train_round(None, ids, [x])
        rows, vectors, info = self.param_list, [], []
        for k, c in enumerate(ids):  # vectors first: they may turn the row into the uplink's form
            vectors.append(self._client_vectors(k, c, x, rows[k]))
            info.append([float(self.sample_counts[k]), *self._client_info(k, c, x, rows[k])])
        self._uplink = make_uplink(vectors, info)
        self.round += 1
        return self.param_list

    def _train_round(self, chunk: int | None, ids: Sequence[int], payload: list[Tensor]) -> list[Tensor]:
        """Train the clients from payload[0]: vmapped in groups of `chunk`, or one at a time (None)."""
        x = payload[0]
        if chunk is None:
            self._one_by_one(list(ids), x)
        else:
            self._vectorized_process(list(ids), x.cpu(), chunk)
            epochs = int(self.args["epochs"])
            self.steps = [epochs * self._steps_per_epoch(i) for i in ids]
        return self.param_list

    def _why_one_by_one(self, ids: list[int]) -> str | None:
        """Why these clients cannot be trained vmapped (None: they can)."""
        if self.batch_clients is None:
            return "batch_clients is None"
        if not self.plain_sgd:
            return "its local step is not plain SGD (the vmapped step has no correction terms)"
        if self._custom_criterion:
            return "a criterion was given (the vmapped step computes cross-entropy)"
        if self.local_epochs is not None:
            return "local_epochs gives clients different epochs"
        return self._vectorize_reason(ids)

    def _one_by_one(self, ids: list[int], x: Tensor) -> None:
        rows = self._row_buffer(len(ids), x.numel())
        self.losses, self.steps, counts = [], [], []
        for k, idx in enumerate(ids):
            loader = self._get_dataloader(client_id=idx)
            self._load_params_(x)
            steps, seen = self._train_client(idx, x, loader, self._epochs(idx))
            self.steps.append(steps)
            n = self._sample_count(loader)
            counts.append(n if n is not None else seen)
            self._read_params(rows[k])
        self.param_list = [rows[k] for k in range(len(ids))]
        self.sample_counts = counts

    @property
    def uplink_package(self) -> list[Tensor]:
        """This algorithm's uplink for the last `local_process` (see `_uplink`)."""
        return self._uplink

    def _eval_loss(self, client: int, x: Tensor) -> float:
        """The mean loss of client `client`'s whole training set at parameters x."""
        self._load_params_(x)
        batches = self._eval_batches(client)
        total, count = 0.0, 0
        device = self.gpu if self.cuda else None
        self._model.eval()
        with torch.no_grad():
            for inputs, labels in batches:
                if device is not None:
                    inputs, labels = inputs.to(device), labels.to(device)
                total += float(self._criterion(self._model(inputs), labels)) * len(labels)
                count += len(labels)
        return total / count if count else 0.0

    def _eval_batches(self, client: int) -> Iterable:
        return SubsetBatches(
            self.dataset, self._get_indices(client), int(self.args["batch_size"]), shuffle=False
        )

    # ---- resumable state ----------------------------------------------------------------------

    def _banks(self) -> dict[str, ClientBank]:
        return {k: v for k, v in vars(self).items() if isinstance(v, ClientBank)}

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: per-client state, shuffling counters, the round."""
        state: dict[str, Any] = {
            "round": self.round,
            "uses": dict(self._uses),
            "banks": {name: bank.state_dict() for name, bank in self._banks().items()},
        }
        if self.seed is None:
            state["torch_rng"] = torch.get_rng_state()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned (torch's global generator too when there is no seed)."""
        self.round = int(state["round"])
        self._uses = {int(k): int(v) for k, v in state["uses"].items()}
        banks = self._banks()
        for name, bank_state in state["banks"].items():
            if name not in banks:
                raise KeyError(
                    f"state_dict has client state {name!r} that {type(self).__name__} does not keep"
                )
            banks[name].load_state_dict(bank_state)
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
