"""Coordinator: maps global client ids to (rank, id) for the server (FedLab 1.2.1 API)."""

from __future__ import annotations

from collections.abc import Iterable

from fastfl.errors import CoordinatorError

__all__ = ["Coordinator", "CoordinatorError"]

MODES = ("LOCAL", "GLOBAL")


class Coordinator:
    """Map global client ids onto the client processes that own them.

    Rank r owns the contiguous global ids after those of the ranks before it in `setup_dict`'s
    order (the server builds it in ascending rank order).

    Args:
        setup_dict: ``{rank: number_of_clients_on_that_rank}``.
        mode: "LOCAL" maps to ids local to the rank, "GLOBAL" keeps the global id.
    """

    def __init__(self, setup_dict: dict[int, int], mode: str = "LOCAL"):
        if not isinstance(setup_dict, dict):
            raise TypeError(
                f"setup_dict must be a dict {{rank: client count}}, got {type(setup_dict).__name__}"
            )
        for rank, count in setup_dict.items():
            if int(count) != count or count < 0:
                raise CoordinatorError(f"setup_dict[{rank}] = {count!r}; client counts must be integers >= 0")
        if mode not in MODES:
            raise CoordinatorError(f"Invalid Map Mode {mode!r}; use 'LOCAL' or 'GLOBAL'")
        self.map = setup_dict
        self.mode = mode
        self._starts: list[tuple[int, int, int]] = []  # (rank, first global id, count)
        first = 0
        for rank, count in setup_dict.items():
            self._starts.append((rank, first, int(count)))
            first += int(count)

    @property
    def total(self) -> int:
        """The number of clients over all ranks."""
        return int(sum(self.map.values()))

    def map_id(self, id: int) -> tuple[int, int]:
        """Return ``(rank, local id)`` in LOCAL mode or ``(rank, id)`` in GLOBAL mode.

        Raises:
            CoordinatorError: `id` is negative or not below `total` (FedLab returned None).
        """
        if isinstance(id, bool) or int(id) != id:
            raise TypeError(f"client id must be an integer, got {id!r}")
        id = int(id)
        if not 0 <= id < self.total:
            raise CoordinatorError(f"client id {id} is out of range; valid ids are 0..{self.total - 1}")
        for rank, first, count in self._starts:
            if id < first + count:
                return (rank, id - first) if self.mode == "LOCAL" else (rank, id)
        raise CoordinatorError(f"client id {id} is owned by no rank")  # unreachable: checked above

    def map_id_list(self, id_list: Iterable[int]) -> dict[int, list[int]]:
        """Group ids by owning rank: ``{rank: [mapped ids]}``, ranks in order of first appearance."""
        out: dict[int, list[int]] = {}
        for id in id_list:
            rank, mapped = self.map_id(id)
            out.setdefault(rank, []).append(mapped)
        return out

    def switch(self) -> None:
        """Toggle between LOCAL and GLOBAL mode."""
        self.mode = "GLOBAL" if self.mode == "LOCAL" else "LOCAL"

    def __call__(self, info: int | Iterable[int]) -> tuple[int, int] | dict[int, list[int]]:
        """Map one id (int) or many ids (any iterable of ints)."""
        if isinstance(info, int):
            return self.map_id(info)
        if isinstance(info, Iterable) and not isinstance(info, str | bytes):
            return self.map_id_list(info)
        raise TypeError(f"Coordinator expects an int or an iterable of ints, got {type(info).__name__}")

    def __str__(self) -> str:
        return f"Coordinator map information: {self.map} \nMap mode: {self.mode} \nTotal: {self.total}"
