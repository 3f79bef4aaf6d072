"""Architecture search for the neural family: the space, the networks it builds, their names."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from mlsmith.models import BuildContext, Choice, Int, sample_space  # noqa: E402
from mlsmith.models._neural import (  # noqa: E402
    NeuralClassifier,
    NeuralFamily,
    NeuralRegressor,
    describe_params,
    layer_widths,
)
from mlsmith.train._nets import BatchNorm1d  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(task: str, n: int = 70, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=(n, 3)), rng.integers(0, 2, n)])
    if task == "regression":
        return X, X[:, 0] - 2 * X[:, 1] + X[:, 3]
    labels = np.array(["a", "b", "c"]) if task == "multiclass" else np.array(["no", "yes"])
    return X, labels[np.arange(n) % len(labels)]


def fitted_net(**params) -> nn.Module:  # type: ignore[no-untyped-def]
    """The network a one-epoch fit on tiny data builds."""
    X, y = tiny("binary")
    return NeuralClassifier(**params, max_epochs=1, device="cpu").fit(X, y).model_


def linears(net: nn.Module) -> list[nn.Linear]:
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


def count(net: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


# --- the space ----------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_the_space_covers_the_architecture(task: str) -> None:
    space = NeuralFamily().search_space(task)
    assert space["depth"] == Int(1, 6)
    assert set(space["architecture"].options) == {"mlp", "resmlp"}
    assert set(space["norm"].options) == {"none", "batch", "layer"}
    assert {"relu", "gelu", "silu"} <= set(space["activation"].options)
    assert set(space["shape"].options) == {"constant", "funnel", "diamond"}
    assert space["dropout"].low == 0.0 and space["dropout"].high >= 0.3
    assert {"width", "lr", "weight_decay", "batch_size", "periodic_embeddings"} <= set(space)
    assert ("label_smoothing" in space) == (task != "regression")
    for dim in space.values():  # static: every option is a plain value an Optuna study stores
        if isinstance(dim, Choice):
            assert all(isinstance(o, str | int | bool) for o in dim.options)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_random_points_of_the_space_build_and_fit(task: str) -> None:
    fam = NeuralFamily()
    X, y = tiny(task)
    ctx = BuildContext(task=task, n_rows=len(y), n_features=X.shape[1], seed=1)
    rng = np.random.default_rng({"binary": 0, "multiclass": 1, "regression": 2}[task])
    for _ in range(6):
        params = sample_space(fam.search_space(task), rng)
        est = fam.build(params, ctx).set_params(max_epochs=2, device="cpu")
        est.fit(X, y)
        assert est.n_epochs_ == 2
        out = est.predict(X[:5])
        assert out.shape == (5,) and np.all(np.isfinite(est._raw_predict(X[:5])))
        hidden = [m.out_features for m in linears(est.model_)]
        if params["architecture"] == "mlp":
            assert hidden[:-1] == layer_widths(params["width"], params["depth"], params["shape"])
        else:
            assert len(est.model_.blocks) == params["depth"]
        assert describe_params(params).startswith(params["architecture"] + " ")


# --- the networks -------------------------------------------------------------------------------
def test_depth_and_widths_shape_the_mlp() -> None:
    assert [m.out_features for m in linears(fitted_net(depth=1, width=64))] == [64, 2]
    assert [m.out_features for m in linears(fitted_net(depth=4, width=64))] == [64] * 4 + [2]
    assert [m.out_features for m in linears(fitted_net(depth=3, width=256, shape="funnel"))] \
        == [256, 128, 64, 2]
    assert [m.out_features for m in linears(fitted_net(depth=5, width=100, shape="diamond"))] \
        == [100, 141, 200, 141, 100, 2]


def test_widths_of_each_shape() -> None:
    assert layer_widths(256, 1, "funnel") == layer_widths(256, 1, "diamond") == [256]
    assert layer_widths(256, 2, "diamond") == [256, 256]  # no middle layer
    assert layer_widths(256, 6, "funnel")[-1] == 64
    for depth in range(1, 7):
        f, d = layer_widths(256, depth, "funnel"), layer_widths(256, depth, "diamond")
        assert f == sorted(f, reverse=True) and f[0] == 256 and len(f) == depth
        assert d[0] == d[-1] == 256 and max(d) <= 512 and d == d[::-1]
    assert layer_widths(256, 0) == []
    with pytest.raises(ValueError, match="unknown shape 'cone'"):
        layer_widths(8, 2, "cone")


@pytest.mark.parametrize("architecture", ["mlp", "resmlp"])
def test_norm_and_activation_change_the_layers(architecture: str) -> None:
    base = {"architecture": architecture, "depth": 3, "width": 32}
    plain = fitted_net(**base, norm="none")
    layer = fitted_net(**base, norm="layer", activation="gelu")
    batch = fitted_net(**base, norm="batch", activation="silu")
    n_norms = 3 if architecture == "mlp" else 3 + 1  # the ResMLP's head has one more
    assert count(plain, nn.LayerNorm) == count(plain, nn.BatchNorm1d) == 0
    assert count(layer, nn.LayerNorm) == n_norms and count(layer, nn.BatchNorm1d) == 0
    assert count(batch, BatchNorm1d) == n_norms and count(batch, nn.LayerNorm) == 0
    assert count(plain, nn.ReLU) >= 3 and count(plain, nn.GELU) == 0
    assert count(layer, nn.GELU) >= 3 and count(layer, nn.ReLU) == 0
    assert count(batch, nn.SiLU) >= 3 and count(batch, nn.ReLU) == 0
    # "auto" keeps each architecture's former default: no norm in an MLP, LayerNorm in a ResMLP
    auto = fitted_net(**base)
    assert count(auto, nn.LayerNorm) == (0 if architecture == "mlp" else n_norms)


def test_resmlp_blocks_follow_the_shape_on_a_constant_stream() -> None:
    net = fitted_net(architecture="resmlp", depth=3, width=32, shape="funnel")
    assert [b.linear1.out_features for b in net.blocks] == [64, 32, 16]  # 2 x [32, 16, 8]
    assert {b.linear2.out_features for b in net.blocks} == {32}
    assert net.first.out_features == 32


def test_batch_norm_trains_with_a_one_row_last_batch() -> None:
    # 33 training rows in batches of 16: the last batch has one row
    rng = np.random.default_rng(0)
    X = rng.normal(size=(33, 3))
    reg = NeuralRegressor(depth=2, width=8, norm="batch", max_epochs=3, batch_size=16,
                          validation_fraction=0.0, device="cpu").fit(X, X[:, 0])
    assert reg.n_epochs_ == 3 and np.all(np.isfinite(reg.predict(X)))


# --- structure strings --------------------------------------------------------------------------
def test_describe_names_the_structure() -> None:
    fam = NeuralFamily()
    assert fam.describe({"architecture": "resmlp", "depth": 3, "width": 256,
                         "activation": "gelu", "norm": "layer", "dropout": 0.1}) \
        == "resmlp 3x[256] gelu layernorm dropout=0.10"
    assert describe_params({"architecture": "resmlp", "depth": 2, "width": 64,
                            "shape": "funnel", "norm": "none", "dropout": 0.0}) \
        == "resmlp 2x[64] hidden[128,32] relu no-norm dropout=0.00"
    assert describe_params({"depth": 3, "width": 128, "shape": "funnel", "norm": "batch",
                            "activation": "silu", "dropout": 0.25, "periodic_embeddings": True}) \
        == "mlp [128,64,32] silu batchnorm dropout=0.25 periodic"
    assert describe_params({}) == "mlp 3x[256] relu no-norm dropout=0.10"  # the defaults
    assert describe_params({"depth": 0}).startswith("mlp linear")
    # the portfolio's configurations keep their former networks
    assert [describe_params(p) for p in fam.portfolio("binary")] == [
        "mlp 3x[256] relu no-norm dropout=0.10",
        "resmlp 2x[192] relu layernorm dropout=0.15 periodic"]


def test_describe_matches_the_built_network() -> None:
    rng = np.random.default_rng(3)
    space = NeuralFamily().search_space("binary")
    for _ in range(4):
        params = {k: v for k, v in sample_space(space, rng).items()
                  if k in ("architecture", "depth", "width", "shape", "norm", "activation")}
        params["architecture"] = "mlp"
        net = fitted_net(**params)
        widths = [m.out_features for m in linears(net)][:-1]
        text = describe_params(params)
        shown = text.split()[1]
        if len(set(widths)) == 1:
            assert shown == f"{len(widths)}x[{widths[0]}]"
        else:
            assert shown == "[" + ",".join(map(str, widths)) + "]"
        assert params["activation"] in text
