"""MessageCode: the codes that say what a package means (FedLab 1.2.1's enum, same names and values)."""

from __future__ import annotations

from enum import Enum

__all__ = ["MessageCode"]


class MessageCode(Enum):
    """What a package means. Values 0-6 are FedLab 1.2.1's and travel in package headers.

    The library's own protocols use ParameterRequest, ParameterUpdate, Exit and SetUp; the
    others are reserved, as in FedLab. `MessageCode(7)` raises ValueError.
    """

    ParameterRequest = 0
    GradientUpdate = 1
    ParameterUpdate = 2
    EvaluateParams = 3
    Exit = 4
    SetUp = 5
    Activation = 6
