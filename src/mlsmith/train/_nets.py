"""Networks for tabular data: a plain MLP, a residual MLP, periodic numeric embeddings."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MLP", "ResMLP", "PeriodicEmbedding"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU,
}


def _activation(name: str) -> nn.Module:
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of "
                         f"{', '.join(map(repr, _ACTIVATIONS))}.") from None


class BatchNorm1d(nn.BatchNorm1d):
    """``torch.nn.BatchNorm1d`` that also trains on a batch of one row.

    A one-row batch has no variance to normalise by, and torch's module raises on it in training
    mode; such a batch (the last, short batch of an epoch, say) is normalised with the running
    statistics instead, and leaves them unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1 and self.track_running_stats:
            return nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight,
                                            self.bias, False, 0.0, self.eps)
        return super().forward(x)


NORMS = (None, "layer", "batch")


def _norm(kind: str | None, width: int) -> nn.Module | None:
    if kind is None or kind == "none":
        return None
    if kind == "layer":
        return nn.LayerNorm(width)
    if kind == "batch":
        return BatchNorm1d(width)
    raise ValueError(f"unknown norm {kind!r}; choose None, 'layer' or 'batch'.")


def _check_embedding(embedding: nn.Module | None, input_dim: int) -> int:
    """The width the first layer sees: ``input_dim``, or the embedding's output width."""
    if embedding is None:
        return input_dim
    if getattr(embedding, "input_dim", input_dim) != input_dim:
        raise ValueError(f"the embedding takes {embedding.input_dim} inputs but input_dim is "
                         f"{input_dim}.")
    return int(embedding.output_dim)  # type: ignore[arg-type]


class PeriodicEmbedding(nn.Module):
    """Periodic embeddings of numeric columns (PLR: periodic, linear, ReLU).

    Each embedded column ``x`` becomes ``relu(W_j [cos(2 pi c_j x), sin(2 pi c_j x)] + b_j)``,
    with ``n_frequencies`` trained frequencies ``c_j`` (initialised from
    ``N(0, frequency_scale^2)``) and a linear map per column to ``d_embedding`` numbers
    (Gorishniy et al., "On Embeddings for Numerical Features in Tabular Deep Learning", 2022).
    Columns not listed in ``columns`` (one-hot indicators, say) pass through unchanged.

    Parameters
    ----------
    input_dim : int
        Columns of the input.
    columns : sequence of int, optional
        The columns to embed; all of them by default.
    n_frequencies, d_embedding : int
        Frequencies per column, and the width of each column's embedding.
    frequency_scale : float
        Standard deviation of the initial frequencies (inputs are assumed roughly standardised).
    """

    def __init__(self, input_dim: int, columns: Sequence[int] | None = None,
                 n_frequencies: int = 16, d_embedding: int = 16,
                 frequency_scale: float = 0.1) -> None:
        super().__init__()
        cols = list(range(input_dim)) if columns is None else sorted(set(int(c) for c in columns))
        if any(c < 0 or c >= input_dim for c in cols):
            raise ValueError(f"embedding columns must lie in [0, {input_dim}); got {cols}.")
        self.input_dim = input_dim
        self.n_embedded = len(cols)
        self.d_embedding = d_embedding
        self.output_dim = input_dim - len(cols) + len(cols) * d_embedding
        passthrough = [c for c in range(input_dim) if c not in set(cols)]
        self.register_buffer("embedded_idx", torch.tensor(cols, dtype=torch.long), persistent=False)
        self.register_buffer("passthrough_idx", torch.tensor(passthrough, dtype=torch.long),
                             persistent=False)
        self.frequencies = nn.Parameter(torch.randn(len(cols), n_frequencies) * frequency_scale)
        bound = 1.0 / math.sqrt(2 * n_frequencies)
        self.weight = nn.Parameter(torch.empty(len(cols), 2 * n_frequencies, d_embedding)
                                   .uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(len(cols), d_embedding).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.n_embedded == 0:
            return x
        v = 2 * math.pi * x.index_select(1, self.embedded_idx).unsqueeze(-1) * self.frequencies
        periodic = torch.cat([torch.cos(v), torch.sin(v)], dim=-1)          # (n, f, 2k)
        emb = torch.relu(torch.einsum("nfk,fkd->nfd", periodic, self.weight) + self.bias)
        return torch.cat([x.index_select(1, self.passthrough_idx), emb.flatten(1)], dim=1)

    def extra_repr(self) -> str:
        return (f"input_dim={self.input_dim}, embedded={self.n_embedded}, "
                f"n_frequencies={self.frequencies.shape[1]}, d_embedding={self.d_embedding}")


class MLP(nn.Module):
    """A multi-layer perceptron: ``[Linear -> (norm) -> activation -> Dropout] x len(hidden_dims) -> Linear``.

    Parameters
    ----------
    input_dim : int
        Features per row.
    hidden_dims : sequence of int
        Width of each hidden layer (empty for a linear model).
    output_dim : int
        Outputs: the number of classes for cross-entropy, 1 for a single regression target.
    dropout : float
        Dropout after each hidden layer.
    activation : str
        ``"relu"`` (default), ``"gelu"``, ``"silu"``, ``"tanh"`` or ``"leaky_relu"``.
    norm : {None, "layer", "batch"}
        Normalisation after each hidden linear layer (``"batch"``: a :class:`BatchNorm1d` that
        also takes one-row batches).
    embedding : nn.Module, optional
        Applied to the input first (a :class:`PeriodicEmbedding`, say); it must have
        ``output_dim``.

    Examples
    --------
    >>> import torch
    >>> from mlsmith.train import MLP
    >>> net = MLP(input_dim=50, hidden_dims=[256, 128], output_dim=2, dropout=0.3)
    >>> net(torch.zeros(4, 50)).shape
    torch.Size([4, 2])
    """

    def __init__(self, input_dim: int, hidden_dims: Sequence[int], output_dim: int,
                 dropout: float = 0.0, activation: str = "relu", norm: str | None = None,
                 embedding: nn.Module | None = None) -> None:
        super().__init__()
        if input_dim < 1 or output_dim < 1:
            raise ValueError(f"MLP needs input_dim and output_dim of at least 1, got "
                             f"{input_dim} and {output_dim}.")
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.embedding = embedding
        width = _check_embedding(embedding, input_dim)
        layers: list[nn.Module] = []
        for h in hidden_dims:
            layers.append(nn.Linear(width, int(h)))
            norm_layer = _norm(norm, int(h))
            if norm_layer is not None:
                layers.append(norm_layer)
            layers.append(_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = int(h)
        layers.append(nn.Linear(width, output_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.embedding is not None:
            x = self.embedding(x)
        return self.layers(x)


class _ResidualBlock(nn.Module):
    def __init__(self, width: int, hidden: int, dropout: float, activation: str,
                 norm: str | None = "layer") -> None:
        super().__init__()
        self.norm = _norm(norm, width) or nn.Identity()
        self.linear1 = nn.Linear(width, hidden)
        self.act = _activation(activation)
        self.drop1 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(hidden, width)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.drop1(self.act(self.linear1(self.norm(x))))
        return x + self.drop2(self.linear2(z))


class ResMLP(nn.Module):
    """A residual MLP for tabular data (the "ResNet" of Gorishniy et al., 2021).

    ``Linear(input, width) -> depth x [x + Dropout(Linear(Dropout(act(Linear(norm(x))))))]
    -> norm -> act -> Linear(width, output)``. The residual stream is ``width`` wide; block
    ``i``'s hidden layer is ``hidden_dims[i]`` wide (``hidden_factor x width`` for every block by
    default).

    Parameters
    ----------
    input_dim, output_dim : int
        Features per row; outputs.
    width, depth : int
        Width of the residual stream, and the number of residual blocks.
    dropout : float
        Dropout after each block's hidden layer and on each block's output.
    hidden_factor : float
        Each block's hidden width relative to ``width``, when ``hidden_dims`` is not given.
    activation : str
        As in :class:`MLP`.
    norm : {"layer", "batch", None}
        Normalisation at the start of each block and before the head (LayerNorm by default;
        None for none).
    hidden_dims : sequence of int, optional
        One hidden width per block (``depth`` of them).
    embedding : nn.Module, optional
        As in :class:`MLP`.

    Examples
    --------
    >>> import torch
    >>> from mlsmith.train import ResMLP
    >>> ResMLP(input_dim=10, width=64, depth=2, output_dim=3)(torch.zeros(5, 10)).shape
    torch.Size([5, 3])
    """

    def __init__(self, input_dim: int, width: int, depth: int, output_dim: int,
                 dropout: float = 0.0, hidden_factor: float = 2.0, activation: str = "relu",
                 embedding: nn.Module | None = None, norm: str | None = "layer",
                 hidden_dims: Sequence[int] | None = None) -> None:
        super().__init__()
        if input_dim < 1 or output_dim < 1 or width < 1 or depth < 0:
            raise ValueError("ResMLP needs input_dim, output_dim, width >= 1 and depth >= 0.")
        if hidden_dims is None:
            hidden_dims = [max(1, int(round(width * hidden_factor)))] * depth
        hidden_dims = [int(h) for h in hidden_dims]
        if len(hidden_dims) != depth or min(hidden_dims, default=1) < 1:
            raise ValueError(f"ResMLP: hidden_dims must hold {depth} positive widths (one per "
                             f"block), got {hidden_dims}.")
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.embedding = embedding
        self.first = nn.Linear(_check_embedding(embedding, input_dim), width)
        self.blocks = nn.Sequential(*[_ResidualBlock(width, h, dropout, activation, norm)
                                      for h in hidden_dims])
        self.head = nn.Sequential(_norm(norm, width) or nn.Identity(), _activation(activation),
                                  nn.Linear(width, output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.embedding is not None:
            x = self.embedding(x)
        return self.head(self.blocks(self.first(x)))
