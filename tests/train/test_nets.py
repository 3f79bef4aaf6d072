"""The tabular networks: shapes, options, errors."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from mlsmith.train import MLP, PeriodicEmbedding, ResMLP  # noqa: E402


def test_mlp_layers() -> None:
    net = MLP(input_dim=50, hidden_dims=[256, 128], output_dim=2, dropout=0.3, norm="layer")
    assert net(torch.zeros(4, 50)).shape == (4, 2)
    kinds = [type(m).__name__ for m in net.layers]
    assert kinds == ["Linear", "LayerNorm", "ReLU", "Dropout"] * 2 + ["Linear"]
    assert MLP(3, [], 1)(torch.zeros(2, 3)).shape == (2, 1)  # linear model
    with pytest.raises(ValueError, match="unknown activation 'relux'"):
        MLP(3, [4], 1, activation="relux")


def test_resmlp_is_residual() -> None:
    torch.manual_seed(0)
    net = ResMLP(input_dim=10, width=16, depth=3, output_dim=3, dropout=0.1)
    assert net(torch.zeros(5, 10)).shape == (5, 3)
    assert len(net.blocks) == 3
    block = net.blocks[0].eval()
    for p in (block.linear2.weight, block.linear2.bias):
        nn.init.zeros_(p)
    x = torch.randn(4, 16)
    assert torch.equal(block(x), x)  # identity when the branch is zero


def test_periodic_embedding_embeds_chosen_columns_only() -> None:
    torch.manual_seed(0)
    emb = PeriodicEmbedding(input_dim=5, columns=[0, 3], n_frequencies=4, d_embedding=6)
    assert emb.output_dim == 3 + 2 * 6
    x = torch.randn(7, 5)
    out = emb(x)
    assert out.shape == (7, 15)
    assert torch.equal(out[:, :3], x[:, [1, 2, 4]])  # pass-through columns first, unchanged
    assert (out[:, 3:] >= 0).all()                   # ReLU
    net = MLP(5, [8], 2, embedding=emb)
    assert net(x).shape == (7, 2)
    with pytest.raises(ValueError, match="embedding takes 5 inputs"):
        MLP(4, [8], 2, embedding=emb)
