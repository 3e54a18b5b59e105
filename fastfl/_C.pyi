# ruff: noqa: N999
"""Stub of fastfl._C, the compiled core (csrc/bindings.cpp); use it through fastfl.ops only.

Every tensor argument must be a contiguous CPU torch.Tensor whose dtype has the code given
beside it (fastfl.dtypes.DType); `_C` checks that and raises ValueError otherwise. The kernels
write into the tensors passed in and allocate none. `threads` is the most threads to use;
inputs under ~256K elements per thread stay on the calling thread. Semantics are those of the
same-named functions in fastfl/ops/_torch.py, the reference.
"""

from collections.abc import Sequence

from torch import Tensor

ABI_VERSION: int

def cast(
    srcs: Sequence[Tensor],
    src_codes: Sequence[int],
    dsts: Sequence[Tensor],
    dst_codes: Sequence[int],
    threads: int,
) -> None:
    """Copy srcs[i] into dsts[i], casting as torch's copy_ does (bitwise, NaN payloads aside)."""

def combine(
    srcs: Sequence[Tensor],
    src_codes: Sequence[int],
    dsts: Sequence[Tensor],
    dst_codes: Sequence[int],
    alpha: float,
    threads: int,
) -> None:
    """Compute dsts[i] += alpha * srcs[i] in fp32 (fp64 if either side is fp64); dsts are floating."""

def weighted_sum(
    inputs: Sequence[Tensor],
    codes: Sequence[int],
    weights: Sequence[float],
    out: Tensor,
    out_code: int,
    acc_fp64: bool,
    threads: int,
) -> None:
    """Write sum_k weights[k] * inputs[k] into out (fp32 or fp64) in one pass over memory."""

def accumulate_(acc: Tensor, acc_code: int, x: Tensor, x_code: int, weight: float, threads: int) -> None:
    """Compute acc += weight * x in acc's precision (fp32 or fp64)."""

def mix_(s: Tensor, s_code: int, n: Tensor, n_code: int, alpha: float, threads: int) -> None:
    """Compute s = (1 - alpha) * s + alpha * n in place (fp64 if s is fp64, else fp32)."""

def dtype_codes() -> dict[str, int]:
    """Return the dtype codes compiled into the core, name -> code (as fastfl.dtypes.DType)."""

def isa_available() -> str:
    """Return the widest instruction-set level this CPU supports: "scalar", "avx2" or "avx512"."""

# ---- compression kernels (csrc/fastfl/compress.*; called through fastfl.ops.compress) ----

COMPRESS_ABI_VERSION: int

def sum_squares(x: Tensor, code: int, threads: int) -> float:
    """Return sum(x_i^2) accumulated in float64 (x float32 or float64)."""

def qsgd_encode(
    x: Tensor, code: int, scale: float, s: int, k0: int, k1: int, out: Tensor, threads: int
) -> None:
    """Quantize x to s levels (stochastic rounding under key k0, k1) and bit-pack the codes into out."""

def qsgd_decode(codes: Tensor, step: float, s: int, out: Tensor, code: int, threads: int) -> int:
    """Unpack QSGD codes into out (sign * level * step); return how many levels exceed s."""

def topk_select(x: Tensor, code: int, k: int, idx: Tensor, vals: Tensor) -> None:
    """Write the k largest |x| (ascending int64 indices, ties to the lower index) into idx and vals."""

def gather(x: Tensor, code: int, idx: Tensor, vals: Tensor) -> None:
    """vals[j] = x[idx[j]]."""

def scatter_(out: Tensor, code: int, idx: Tensor, vals: Tensor | None) -> None:
    """out[idx[j]] = vals[j], or 0 where vals is None."""

def dgc_accumulate_(
    u: Tensor, v: Tensor, g: Tensor, code: int, momentum: float, nesterov: bool, threads: int
) -> None:
    """DGC momentum correction in place: u = m*u + g; v += u (nesterov: u = (u + g)*m; v += u + g)."""

def isa() -> str:
    """Return the level the kernels run at: isa_available() capped by set_isa."""

def set_isa(cap: str) -> str:
    """Cap the level ("scalar", "avx2" or "avx512") process-wide (tests, FASTFL_ISA); return the old cap."""

def empty_pages(shape: Sequence[int], dl_code: int, dl_bits: int) -> object:
    """Return a DLPack capsule over new huge-page-advised memory, or a warm pooled buffer.

    The memory is 2 MiB-aligned; the tensor's deleter gives it back to the pool.
    """

def set_pool_limit(bytes: int) -> int:
    """Set the most bytes of freed buffers the pool keeps (0 empties it); return the old limit."""

def pooled_bytes() -> int:
    """Return the bytes the pool holds now (freed buffers waiting for reuse)."""

# ---- optimizer kernels (csrc/fastfl/optim.*; called through fastfl.ops.optim) ----

def optim_local_step(
    w: Tensor,
    g: Tensor | None,
    anchor: Tensor | None,
    lin: Tensor | None,
    code: int,
    lr: float,
    mu: float,
    threads: int,
) -> None:
    """One local step on a flat float32 model in place: w -= lr * (g + mu * (w - anchor) + lin) (None terms skipped)."""

def optim_control_update(
    state: Tensor,
    x: Tensor | None,
    y: Tensor | None,
    shift: Tensor | None,
    delta: Tensor | None,
    code: int,
    scale: float,
    threads: int,
) -> None:
    """Compute state = state - shift + scale * (x - y) in place (no shift if None); delta gets the change."""

def optim_server_step(
    x: Tensor,
    delta: Tensor | None,
    m: Tensor | None,
    v: Tensor | None,
    code: int,
    kind: int,
    lr: float,
    beta1: float,
    beta2: float,
    tau: float,
    threads: int,
) -> None:
    """One server optimizer step (momentum, Adam, Yogi or Adagrad, by kind) on the flat global model in place."""

# ---- flat plans (fastfl/utils/_layout.py; used by SerializationTool) ----

FLAT_PLAN_ABI: int

class FlatPlan:
    """A model's flat layout, re-checked in full and copied in one call.

    Built from the model (the root module), whether persistent buffers are included, the layout's
    tensors (the model's own objects, in flat order), their detached aliases and their dtype codes.
    It keeps the tensors alive, never the modules. Raises ValueError when a tensor is not a
    contiguous CPU tensor of its code or the module tree cannot be walked.
    """

    def __init__(
        self,
        root: object,
        include_buffers: bool,
        sources: Sequence[Tensor],
        aliases: Sequence[Tensor],
        codes: Sequence[int],
    ) -> None: ...
    @property
    def numel(self) -> int:
        """The layout's element count."""
    def __len__(self) -> int: ...
    def walked(self, root: object) -> list[Tensor]:
        """The distinct tensors the walk of root meets: parameters, then persistent buffers."""
    def valid(self, root: object) -> bool:
        """True when root holds the same tensors, each unchanged since the plan was built.

        Compared: the objects met walking the modules, and each tensor's address, dtype, shape,
        contiguity and device.
        """
    def unflatten(self, root: object, flat: Tensor, flat_code: int, mode: int, threads: int) -> bool:
        """If valid(root), write flat into the tensors and return True; else write nothing, return False.

        mode: 0 copy, 1 add, -1 sub (add and sub skip the integer tail; they return False, writing
        nothing, when an integer tensor comes before a floating one).
        """
    def flatten(self, root: object, out: Tensor, out_code: int, threads: int) -> bool:
        """If valid(root): copy the tensors into out, casting to its dtype, and return True; else False."""
