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


def test_resmlp_norm_and_hidden_widths() -> None:
    from mlsmith.train._nets import BatchNorm1d

    net = ResMLP(input_dim=4, width=8, depth=3, output_dim=1, norm="batch", activation="silu",
                 hidden_dims=[16, 8, 4])
    assert [b.linear1.out_features for b in net.blocks] == [16, 8, 4]
    assert all(isinstance(b.norm, BatchNorm1d) for b in net.blocks)
    assert isinstance(net.head[0], BatchNorm1d) and isinstance(net.head[1], nn.SiLU)
    bare = ResMLP(input_dim=4, width=8, depth=2, output_dim=1, norm=None)
    assert all(isinstance(b.norm, nn.Identity) for b in bare.blocks)
    assert not any(isinstance(m, nn.LayerNorm | nn.BatchNorm1d) for m in bare.modules())
    # the LayerNorm default keeps the parameter names checkpoints were saved with
    assert {"blocks.0.norm.weight", "head.0.weight", "head.2.weight"} <= set(
        ResMLP(4, 8, 1, 1).state_dict())
    with pytest.raises(ValueError, match="hidden_dims must hold 2 positive widths"):
        ResMLP(4, 8, 2, 1, hidden_dims=[16])


def test_batch_norm_takes_a_one_row_batch_in_training() -> None:
    from mlsmith.train._nets import BatchNorm1d

    torch.manual_seed(0)
    bn = BatchNorm1d(3).train()
    bn(torch.randn(8, 3) * 2 + 1)  # moves the running statistics
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    x = torch.randn(1, 3)
    out = bn(x)  # torch's BatchNorm1d raises here
    torch.testing.assert_close(out, (x - mean) / torch.sqrt(var + bn.eps))
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        nn.BatchNorm1d(3).train()(x)
    net = MLP(3, [4, 4], 2, norm="batch")
    assert net.train()(x).shape == (1, 2)
