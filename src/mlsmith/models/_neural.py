"""Neural networks as a model family: scikit-learn estimators over :class:`mlsmith.train.Trainer`.

The estimators take the numbers of the ``"scaled"`` recipe (imputed, standard-scaled numbers,
one-hot categories), scale them once more for a network, hold out a stratified slice of the rows
for early stopping, and train an MLP or a residual MLP. Categories arrive one-hot encoded, so
there are no categorical embeddings; numeric columns can get periodic embeddings.

Architecture search: the family's space covers depth (1-6), width and the shape of the widths
across layers, residual or not, batch / layer / no normalisation, dropout and the activation;
:func:`describe_params` turns a configuration into the one-line structure a leaderboard shows
(``"resmlp 3x[256] gelu layernorm dropout=0.10"``). An optional ``epoch_callback`` reports every
epoch's validation numbers to the caller (an Optuna pruner, say), which may stop a poor
configuration early.

Input scaling: columns with more than two distinct values are centred on their median, divided
by their IQR / 1.349 (their standard deviation where the IQR is 0) and smoothly clipped with
``z / sqrt(1 + (z / 3)^2)`` (near ``z`` for small values, approaching +-3); two-valued columns
(one-hot, missing indicators) are standardised; constant columns become 0.

torch is imported when an estimator is fitted, never when this module is imported.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from mlsmith.models._base import BuildContext, Capabilities, ModelFamily
from mlsmith.models._space import Choice, Float, Int, Space

__all__ = ["NeuralClassifier", "NeuralRegressor", "NeuralFamily", "describe_params",
           "layer_widths"]

ALL_TASKS = frozenset({"binary", "multiclass", "regression"})
CLIP = 3.0
SHAPES = ("constant", "funnel", "diamond")
ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "leaky_relu")
#: the hidden layer of a residual block, relative to the width of the residual stream
RES_HIDDEN_FACTOR = 2.0


# --- architecture -------------------------------------------------------------------------------
def layer_widths(width: int, depth: int, shape: str = "constant") -> list[int]:
    """The width of each of ``depth`` hidden layers, from the first width and a shape.

    ``"constant"``: every layer ``width`` wide. ``"funnel"``: narrowing geometrically from
    ``width`` to ``width / 4`` at the last layer. ``"diamond"``: ``width`` at the first and last
    layers, widening geometrically to ``2 x width`` in the middle. One layer is ``[width]`` in
    every shape, and a diamond of two layers is constant (it has no middle).

    Examples
    --------
    >>> layer_widths(256, 3, "funnel"), layer_widths(256, 3, "diamond")
    ([256, 128, 64], [256, 512, 256])
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(map(repr, SHAPES))}.")
    if depth <= 0:
        return []
    if shape == "constant" or depth == 1:
        return [int(width)] * depth
    widths = []
    for i in range(depth):
        t = i / (depth - 1)  # 0 at the first layer, 1 at the last
        factor = 0.25 ** t if shape == "funnel" else 2.0 ** (1.0 - abs(2.0 * t - 1.0))
        widths.append(max(1, int(round(width * factor))))
    return widths


def resolve_norm(architecture: str, norm: str) -> str | None:
    """``"layer"``, ``"batch"`` or None; ``"auto"`` is none for an MLP, LayerNorm for a ResMLP."""
    if norm == "auto":
        return "layer" if architecture == "resmlp" else None
    return None if norm == "none" else norm


def _architecture(params: Mapping[str, Any]) -> tuple[str, list[int], str | None]:
    """Architecture, hidden widths (per layer, or per residual block) and norm of ``params``."""
    arch = params["architecture"]
    widths = layer_widths(int(params["width"]), int(params["depth"]), params["shape"])
    if arch == "resmlp":
        widths = [max(1, int(round(RES_HIDDEN_FACTOR * w))) for w in widths]
    return arch, widths, resolve_norm(arch, params["norm"])


def describe_params(params: Mapping[str, Any]) -> str:
    """The structure of the network ``params`` builds, in one line for a leaderboard.

    Parameters not given take the estimators' defaults; parameters that do not shape the
    network (``lr``, ``batch_size``, ...) are left out.

    Examples
    --------
    >>> describe_params({"architecture": "resmlp", "depth": 3, "width": 256,
    ...                  "activation": "gelu", "norm": "layer", "dropout": 0.1})
    'resmlp 3x[256] gelu layernorm dropout=0.10'
    >>> describe_params({"depth": 3, "width": 256, "shape": "funnel", "norm": "batch",
    ...                  "dropout": 0.0, "periodic_embeddings": True})
    'mlp [256,128,64] relu batchnorm dropout=0.00 periodic'
    """
    p = {**NeuralRegressor().get_params(), **params}
    arch, widths, norm = _architecture(p)
    depth, width = int(p["depth"]), int(p["width"])
    if arch == "resmlp":
        text = f"resmlp {depth}x[{width}]"
        if len(set(widths)) > 1:
            text += f" hidden[{','.join(map(str, widths))}]"
    elif not widths:
        text = "mlp linear"
    elif len(set(widths)) == 1:
        text = f"mlp {depth}x[{widths[0]}]"
    else:
        text = f"mlp [{','.join(map(str, widths))}]"
    norm_name = {"layer": "layernorm", "batch": "batchnorm"}.get(norm or "", "no-norm")
    parts = [text, str(p["activation"]), norm_name, f"dropout={float(p['dropout']):.2f}"]
    if p["periodic_embeddings"]:
        parts.append("periodic")
    return " ".join(parts)


# --- input scaling ------------------------------------------------------------------------------
def fit_input_scaling(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre, scale and the mask of smoothly clipped (many-valued) columns, from training rows."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    two_valued = ((X == lo) | (X == hi)).all(axis=0)
    q25, median, q75 = np.percentile(X, [25, 50, 75], axis=0)
    std = X.std(axis=0)
    robust = (q75 - q25) / 1.349
    center = np.where(two_valued, X.mean(axis=0), median)
    scale = np.where(two_valued | (robust <= 1e-12), std, robust)
    scale = np.where(scale <= 1e-12, 1.0, scale)
    many_valued = ~two_valued
    return center, scale, many_valued


def apply_input_scaling(X: np.ndarray, center: np.ndarray, scale: np.ndarray,
                        clipped: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    z = (X - center) / scale
    z[:, clipped] = z[:, clipped] / np.sqrt(1.0 + (z[:, clipped] / CLIP) ** 2)
    return z.astype(dtype)


@contextmanager
def _own_random_state(seed: int):  # type: ignore[no-untyped-def]
    """Seed torch, numpy and Python for a fit, and give the caller their states back afterwards."""
    import torch

    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


class _NeuralBase(BaseEstimator):
    """Shared fit and predict logic; see :class:`NeuralClassifier` for the parameters."""

    _is_classifier = False

    _parameter_constraints: dict = {
        "architecture": [StrOptions({"mlp", "resmlp"})],
        "depth": [Interval(Integral, 0, None, closed="left")],
        "width": [Interval(Integral, 1, None, closed="left")],
        "shape": [StrOptions(set(SHAPES))],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "norm": [StrOptions({"auto", "none", "layer", "batch"})],
        "dropout": [Interval(Real, 0.0, 1.0, closed="left")],
        "lr": [Interval(Real, 0.0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0.0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
        "validation_fraction": [Interval(Real, 0.0, 1.0, closed="left")],
        "label_smoothing": [Interval(Real, 0.0, 1.0, closed="left")],
        "periodic_embeddings": ["boolean"],
        "n_frequencies": [Interval(Integral, 1, None, closed="left")],
        "d_embedding": [Interval(Integral, 1, None, closed="left")],
        "schedule": [StrOptions({"warmup_cosine", "constant", "onecycle", "plateau"})],
        "precision": [StrOptions({"32", "bf16", "16"})],
        "device": [str],
        "random_state": ["random_state"],
        "deadline": [Real, None],
        "verbose": ["boolean"],
        "epoch_callback": [callable, None],
    }

    def __init__(self, architecture: str = "mlp", depth: int = 3, width: int = 256,
                 shape: str = "constant", activation: str = "relu", norm: str = "auto",
                 dropout: float = 0.1, lr: float = 1e-3, weight_decay: float = 1e-5,
                 batch_size: int = 256, max_epochs: int = 200, patience: int | None = 16,
                 validation_fraction: float = 0.1, label_smoothing: float = 0.0,
                 periodic_embeddings: bool = False, n_frequencies: int = 16,
                 d_embedding: int = 16, schedule: str = "warmup_cosine", precision: str = "32",
                 device: str = "auto", random_state: Any = 0, deadline: float | None = None,
                 verbose: bool = False,
                 epoch_callback: Callable[[int, float, float | None], bool] | None = None,
                 ) -> None:
        self.architecture = architecture
        self.depth = depth
        self.width = width
        self.shape = shape
        self.activation = activation
        self.norm = norm
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.label_smoothing = label_smoothing
        self.periodic_embeddings = periodic_embeddings
        self.n_frequencies = n_frequencies
        self.d_embedding = d_embedding
        self.schedule = schedule
        self.precision = precision
        self.device = device
        self.random_state = random_state
        self.deadline = deadline
        self.verbose = verbose
        self.epoch_callback = epoch_callback

    # --- fitting --------------------------------------------------------------------------------
    def _seed(self) -> int:
        rs = self.random_state
        if rs is None:
            return int(np.random.default_rng().integers(2**31 - 1))
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(2**31 - 1))
        return int(rs)

    def _split(self, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        n = len(y)
        frac = self.validation_fraction if n >= 2000 else max(self.validation_fraction, 0.15)
        n_val = int(round(n * frac))
        if self.validation_fraction == 0 or n_val < 10 or n - n_val < 10:
            return np.arange(n), None
        stratify = None
        if self._is_classifier:
            _, counts = np.unique(y, return_counts=True)
            if counts.min() >= 2 and n_val >= len(counts):
                stratify = y
        train, val = train_test_split(np.arange(n), test_size=n_val, random_state=seed,
                                      stratify=stratify)
        return np.sort(train), np.sort(val)

    def _build_net(self, n_features: int, n_outputs: int) -> Any:
        from mlsmith.train import MLP, PeriodicEmbedding, ResMLP

        embedding = None
        if self.periodic_embeddings and self.clipped_.any():
            embedding = PeriodicEmbedding(n_features, np.flatnonzero(self.clipped_).tolist(),
                                          n_frequencies=self.n_frequencies,
                                          d_embedding=self.d_embedding)
        arch, widths, norm = _architecture(self.get_params())
        if arch == "resmlp":
            return ResMLP(n_features, self.width, self.depth, n_outputs, dropout=self.dropout,
                          activation=self.activation, norm=norm, hidden_dims=widths,
                          embedding=embedding)
        return MLP(n_features, widths, n_outputs, dropout=self.dropout,
                   activation=self.activation, norm=norm, embedding=embedding)

    def _fit(self, X: np.ndarray, y_fit: np.ndarray, n_outputs: int) -> None:
        from mlsmith.train import Trainer

        seed = self._seed()
        self.center_, self.scale_, self.clipped_ = fit_input_scaling(X)
        Z = apply_input_scaling(X, self.center_, self.scale_, self.clipped_)
        train, val = self._split(y_fit, seed)
        n_train = len(train)
        # small data: smaller batches, so that an epoch still has about eight steps
        batch = int(min(self.batch_size, max(16, n_train // 8), n_train))
        callbacks = []
        if self.epoch_callback is not None:
            from mlsmith.train._pruning import EpochReporter

            # the score handed on is higher-is-better: accuracy, or minus the RMSE
            callbacks.append(EpochReporter(self.epoch_callback,
                                           greater_is_better=self._is_classifier))
        trainer = Trainer(
            max_epochs=self.max_epochs, batch_size=batch, lr=self.lr,
            weight_decay=self.weight_decay, schedule=self.schedule,
            precision=self.precision, device=self.device,
            label_smoothing=self.label_smoothing if self._is_classifier else 0.0,
            patience=self.patience if val is not None else None, seed=seed,
            deadline=self.deadline, verbose=self.verbose, callbacks=callbacks)
        t0 = time.time()
        with _own_random_state(seed):
            net = self._build_net(X.shape[1], n_outputs)
            history = trainer.fit(net, train=(Z[train], y_fit[train]),
                                  val=None if val is None else (Z[val], y_fit[val]))
        self.fit_seconds_ = time.time() - t0
        # predictions in float64 on the CPU: a row's output does not depend on the other rows
        # in its batch (float32 matrix kernels sum in an order that depends on the batch size)
        self.model_ = net.cpu().double().eval()
        self.history_ = history
        self.n_epochs_ = len(history)
        self.best_epoch_ = history.best_epoch
        self.pruned_ = history.meta.get("stopped_by") == "pruned"

    def _raw_predict(self, X: Any) -> np.ndarray:
        import torch

        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        if self.model_ is None:
            return np.zeros((len(X), 1))
        Z = torch.from_numpy(apply_input_scaling(X, self.center_, self.scale_, self.clipped_,
                                                 dtype=np.float64))
        with torch.no_grad():
            out = [self.model_(Z[i:i + 8192]) for i in range(0, len(Z), 8192)]
        return torch.cat(out).numpy() if out else np.zeros((0, 1))

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class NeuralClassifier(ClassifierMixin, _NeuralBase):
    """A neural network classifier (MLP or residual MLP) trained with early stopping.

    Parameters
    ----------
    architecture : {"mlp", "resmlp"}
        A plain MLP of ``depth`` hidden layers, or a residual MLP of ``depth`` blocks on a
        residual stream ``width`` wide (:class:`mlsmith.train.ResMLP`).
    depth, width : int
        Hidden layers (residual blocks), and the width of the first.
    shape : {"constant", "funnel", "diamond"}
        How the widths change across layers (:func:`layer_widths`); in a residual MLP it
        shapes the blocks' hidden layers (``2 x`` the widths), the residual stream stays
        ``width`` wide.
    activation : {"relu", "gelu", "silu", "tanh", "leaky_relu"}
        The activation of every hidden layer.
    norm : {"auto", "none", "layer", "batch"}
        Normalisation after each hidden layer of an MLP, at the start of each residual block
        and before the head of a ResMLP; ``"auto"``: none for an MLP, LayerNorm for a ResMLP.
    dropout, lr, weight_decay : float
        Dropout after each hidden layer; AdamW's peak learning rate and weight decay.
    batch_size : int
        The largest batch; small data uses smaller ones (about eight steps per epoch).
    max_epochs, patience : int
        Epochs at most, and epochs without a better validation loss before stopping.
    validation_fraction : float
        Share of the rows held out (stratified) for early stopping; at least 15% below 2,000
        rows, none when fewer than 10 rows would be held out.
    label_smoothing : float
        Cross-entropy label smoothing (ignored by the regressor).
    periodic_embeddings : bool
        Periodic (PLR) embeddings of the many-valued columns, ``n_frequencies`` frequencies and
        ``d_embedding`` numbers per column.
    schedule, precision, device
        As in :class:`mlsmith.train.Trainer`.
    random_state : int, RandomState or None
        Seeds the weights, the split and the batch order: one seed, one model.
    deadline : float, optional
        ``time.time()`` after which training stops; the best epoch so far is kept.
    verbose : bool
        Show a progress bar per epoch.
    epoch_callback : callable, optional
        ``epoch_callback(epoch, val_loss, val_score) -> bool``, called after each epoch's
        validation (``epoch`` from 1; the training loss stands in for ``val_loss`` without a
        validation split, and ``val_score`` is then None). ``val_score`` is higher-is-better:
        the validation accuracy, or minus the validation RMSE of the standardised target for
        the regressor. Returning True stops training: the fit ends normally with the best epoch
        so far, and ``pruned_`` is True. It must pickle (it is part of the estimator), e.g.
        :class:`mlsmith.train._pruning.OptunaEpochPruner`.

    Attributes
    ----------
    classes_ : ndarray
        The class labels, sorted.
    model_ : torch.nn.Module
        The trained network, on the CPU in float64 for predictions, or None when ``y`` has one
        class.
    history_ : mlsmith.train.History
        Per-epoch losses, metric and learning rate.
    pruned_ : bool
        True when ``epoch_callback`` stopped the training.
    """

    _is_classifier = True

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> NeuralClassifier:
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) == 1:
            self.model_ = None
            self.history_ = None
            self.n_epochs_ = 0
            self.pruned_ = False
            return self
        self._fit(X, y_enc.astype(np.int64), len(self.classes_))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        logits = self._raw_predict(X)
        if self.model_ is None:
            return np.ones((len(logits), 1))
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)  # checks that the estimator is fitted
        return self.classes_[np.argmax(proba, axis=1)]


class NeuralRegressor(RegressorMixin, _NeuralBase):
    """A neural network regressor (MLP or residual MLP) trained with early stopping.

    The target is standardised for training and mapped back for predictions; the parameters
    are those of :class:`NeuralClassifier` (``label_smoothing`` is ignored).
    """

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> NeuralRegressor:
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        y = y.astype(np.float64)
        self.y_mean_ = float(y.mean())
        std = float(y.std())
        self.y_scale_ = std if std > 1e-12 else 1.0
        self._fit(X, ((y - self.y_mean_) / self.y_scale_).astype(np.float32), 1)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self._raw_predict(X)[:, 0] * self.y_scale_ + self.y_mean_


class NeuralFamily(ModelFamily):
    """Multi-layer perceptrons and residual MLPs (torch), on scaled, one-hot inputs.

    The search space covers the architecture (depth, widths, residual or not, normalisation,
    activation, dropout) with the training settings; :meth:`describe` names a configuration's
    structure for the leaderboard.
    """

    name = "neural"
    requires = "torch"
    extra = "torch"
    # in the default portfolio when torch is installed: alone on the public suite at 60 s it
    # was within 1% of HistGradientBoosting's defaults on 14 of 21 datasets and far ahead on
    # texture and letter (benchmarks/RESULTS.md); it runs late, when time is left
    in_default_portfolio = True
    capabilities = Capabilities(tasks=ALL_TASKS, preprocessing="scaled", relative_cost=20.0,
                                stops_at_deadline=True)

    def build(self, params: dict[str, Any], ctx: BuildContext) -> Any:
        cls = NeuralRegressor if ctx.task == "regression" else NeuralClassifier
        return cls(**params, random_state=ctx.seed, deadline=ctx.deadline)

    def portfolio(self, task: str) -> list[dict[str, Any]]:
        return [
            {"architecture": "mlp", "depth": 3, "width": 256, "dropout": 0.1, "lr": 1e-3,
             "weight_decay": 1e-5, "batch_size": 256},
            {"architecture": "resmlp", "depth": 2, "width": 192, "dropout": 0.15, "lr": 7e-4,
             "weight_decay": 1e-4, "batch_size": 256, "periodic_embeddings": True},
        ]

    def search_space(self, task: str) -> Space:
        """Architecture and training: every point builds a network (see :meth:`describe`).

        Widths are one first width and a shape (constant, funnel or diamond) rather than a width
        per layer: a static space cannot make ``width_4`` depend on ``depth >= 5``, so six
        per-layer widths would be six dimensions, most of them unused by any one trial, for the
        sampler to model; two dimensions cover the profiles that matter for tabular MLPs and
        are used by every trial of depth 2 or more.
        """
        space: Space = {
            "architecture": Choice(("mlp", "resmlp")),
            "depth": Int(1, 6),
            "width": Int(64, 512, log=True),
            "shape": Choice(SHAPES),
            "norm": Choice(("none", "batch", "layer")),
            "activation": Choice(("relu", "gelu", "silu")),
            "dropout": Float(0.0, 0.5),
            "lr": Float(1e-4, 3e-3, log=True),
            "weight_decay": Float(1e-6, 1e-2, log=True),
            "batch_size": Choice((64, 128, 256, 512)),
            "periodic_embeddings": Choice((False, True)),
        }
        if task != "regression":
            space["label_smoothing"] = Float(0.0, 0.2)
        return space

    def describe(self, params: Mapping[str, Any]) -> str:
        """The network's structure in one line, e.g. ``"resmlp 3x[256] gelu layernorm dropout=0.10"``."""
        return describe_params(params)
