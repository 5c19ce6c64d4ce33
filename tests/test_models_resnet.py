"""cnncourse.models.resnet and .resnext against torchvision and the published figures.

Every check compares with something outside the code under test: torchvision's models
(parameter counts; outputs and gradients after copying torchvision's weights in), the
numbers in the papers, or a path-by-path computation of a ResNeXt block.
"""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

from cnncourse.data import make_loaders
from cnncourse.grading import copy_weights
from cnncourse.models import resnet, resnext
from cnncourse.train import fit

MODELS = {
    "resnet18": resnet.resnet18,
    "resnet34": resnet.resnet34,
    "resnet50": resnet.resnet50,
    "resnet101": resnet.resnet101,
    "resnet152": resnet.resnet152,
    "resnext50_32x4d": resnext.resnext50_32x4d,
    "resnext101_32x8d": resnext.resnext101_32x8d,
}

# torchvision 0.18+ parameter counts (weights=None, 1000 classes), pinned so a change on
# either side shows up.
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
}

# Published figures in millions, to one decimal. ResNets: torchvision's model docs (He et
# al. 2016 give FLOPs, not parameter counts); Xie et al. 2017, table 1: ResNet-50 25.5M
# (their count), ResNeXt-50 (32x4d) 25.0M; ResNeXt-101 (32x8d): 88.8M (torchvision docs;
# Mahajan et al. 2018 use this width).
PUBLISHED_MILLIONS = {
    "resnet18": 11.7,
    "resnet34": 21.8,
    "resnet50": 25.6,
    "resnet101": 44.5,
    "resnet152": 60.2,
    "resnext50_32x4d": 25.0,
    "resnext101_32x8d": 88.8,
}


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def randomise_batch_norm(model: nn.Module, seed: int = 0) -> None:
    """Give every BN random affine parameters and running statistics.

    Freshly initialised BN layers (mean 0, var 1, weight 1, bias 0) are nearly the
    identity in eval mode, so a model that applied them in the wrong place, or not at
    all, would still match. Random values make each BN's position matter.
    """
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = torch.rand(c, generator=g) * 0.5 + 0.5
            m.bias.data = torch.randn(c, generator=g) * 0.2
            m.running_mean = torch.randn(c, generator=g) * 0.2
            m.running_var = torch.rand(c, generator=g) + 0.5


@pytest.fixture(scope="module", params=list(MODELS))
def pair(request):
    """(name, ours, torchvision's) with torchvision's (BN-randomised) weights in ours."""
    name = request.param
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)(weights=None)
    randomise_batch_norm(theirs)
    ours = copy_weights(theirs, MODELS[name]())
    return name, ours, theirs


def test_parameter_counts_match_torchvision_and_papers(pair):
    name, ours, theirs = pair
    assert count(theirs) == TORCHVISION_PARAMS[name]
    assert count(ours) == count(theirs)
    assert round(count(ours) / 1e6, 1) == PUBLISHED_MILLIONS[name]
    # Same tensors in the same order (what copy_weights relies on), buffers included.
    assert [t.shape for t in ours.state_dict().values()] == [
        t.shape for t in theirs.state_dict().values()
    ]


def test_eval_outputs_match_torchvision(pair):
    name, ours, theirs = pair
    ours.eval(), theirs.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = theirs(x)
        actual = ours(x)
    assert actual.shape == (2, 1000)
    assert expected.std() > 1e-3  # not a degenerate, constant output
    torch.testing.assert_close(actual, expected)


def test_train_mode_outputs_gradients_and_stats_match_torchvision(pair):
    """Train mode: BN uses batch statistics and updates its running ones.

    At 32x32 to keep the backward pass cheap: layer4 then works on 1x1 maps, and its BN
    still has two values (the batch) per channel to normalise.
    """
    name, ours, theirs = pair
    ours.train(), theirs.train()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    expected = theirs(x)
    actual = ours(x)
    torch.testing.assert_close(actual, expected)
    expected.square().mean().backward()
    actual.square().mean().backward()
    for (n_t, p_t), (n_o, p_o) in zip(
        theirs.named_parameters(), ours.named_parameters(), strict=True
    ):
        torch.testing.assert_close(p_o.grad, p_t.grad, msg=f"gradient of {n_o} vs {n_t}")
    # The running statistics moved the same way (buffers in the same order).
    for t, o in zip(theirs.state_dict().values(), ours.state_dict().values(), strict=True):
        torch.testing.assert_close(o, t)
    ours.zero_grad(set_to_none=True), theirs.zero_grad(set_to_none=True)


def test_eval_check_is_sensitive_to_batch_norm_statistics():
    """A single moved BN statistic deep in the network must break the eval comparison."""
    torch.manual_seed(0)
    theirs = torchvision.models.resnet18(weights=None)
    randomise_batch_norm(theirs)
    ours = copy_weights(theirs, resnet.resnet18()).eval()
    ours.layer4[1].bn2.running_mean += 0.5
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert not torch.allclose(ours(x), theirs.eval()(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "name, features",
    [("resnet18", 512), ("resnet50", 2048), ("resnext50_32x4d", 2048)],
)
def test_shapes_at_224_and_features_plus_head_equal_forward(name, features):
    model = MODELS[name]().eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (1, features, 7, 7)  # 224 / 32 = 7
        out = model(x)
        assert out.shape == (1, 1000)
        torch.testing.assert_close(model.head(feats), out, rtol=0, atol=0)


def test_num_classes_and_in_channels():
    model = resnet.resnet34(num_classes=7, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 7)
    assert model.stem.conv.weight.shape == (64, 1, 7, 7)
    assert model.head.fc.weight.shape == (7, 512)
    small = resnext.resnext_small(num_classes=3, in_channels=1).eval()
    with torch.no_grad():
        assert small(torch.randn(2, 1, 32, 32)).shape == (2, 3)


@pytest.mark.parametrize("factory", [resnet.resnet_small, resnext.resnext_small])
def test_small_variants_keep_32x32_through_the_stem(factory):
    model = factory().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert model.stem(x).shape == (2, 16, 32, 32)  # stride 1, no max pool
        feats = model.forward_features(x)
        assert feats.shape == (2, 64, 8, 8)
        torch.testing.assert_close(model.head(feats), model(x), rtol=0, atol=0)
    # He et al. 2016, section 4.2: depth 6n + 2; ResNet-20 has 0.27M parameters.
    assert round(count(resnet.resnet_small(blocks_per_stage=3)) / 1e6, 2) == 0.27


def test_bottleneck_puts_the_stride_on_the_3x3_conv():
    """ResNet v1.5 (torchvision), not the paper's stride on the first 1x1 conv."""
    block = resnet.Bottleneck(256, 128, stride=2)
    assert block.conv1.stride == (1, 1) and block.conv1.kernel_size == (1, 1)
    assert block.conv2.stride == (2, 2) and block.conv2.kernel_size == (3, 3)
    assert block(torch.randn(1, 256, 8, 8)).shape == (1, 512, 4, 4)


def test_resnext_grouped_conv_matches_torchvision_layout():
    ours, theirs = resnext.resnext50_32x4d(), torchvision.models.resnext50_32x4d(weights=None)
    for stage in range(1, 5):
        for o, t in zip(
            getattr(ours, f"layer{stage}"), getattr(theirs, f"layer{stage}"), strict=True
        ):
            assert isinstance(o, resnext.ResNeXtBlock)
            assert o.conv2.groups == t.conv2.groups == o.cardinality == 32
            assert o.conv2.out_channels == t.conv2.out_channels
            assert o.conv2.out_channels == o.cardinality * o.bottleneck_width
        # d doubles per stage: 4, 8, 16, 32 ("32x4d" names the first stage)
        assert o.bottleneck_width == 4 * 2 ** (stage - 1)


def test_resnext_block_arguments():
    block = resnext.ResNeXtBlock(64, 128, cardinality=8, bottleneck_width=4, stride=2)
    assert block.conv2.groups == 8
    assert block.conv2.in_channels == block.conv2.out_channels == 32
    assert block.conv2.weight.shape == (32, 4, 3, 3)  # each output sees only its path's 4
    assert block.conv3.weight.shape == (128, 32, 1, 1)
    assert block(torch.randn(2, 64, 8, 8)).shape == (2, 128, 4, 4)


def test_resnext_block_equals_sum_of_separate_paths():
    """Figure 3 of Xie et al.: C separate paths, summed, equal the grouped-conv block.

    Each path is computed with its own slices of the weights and dense convs; the last
    1x1 conv is applied per path and the results are added, which is what the block's
    single 1x1 conv over all C*d channels must reproduce.
    """
    torch.manual_seed(0)
    C, d, cin, cout = 4, 3, 16, 24
    block = resnext.ResNeXtBlock(cin, cout, cardinality=C, bottleneck_width=d).eval()
    randomise_batch_norm(block)
    x = torch.randn(2, cin, 6, 6)

    def bn(t, m, sl=slice(None)):
        return (t - m.running_mean[sl, None, None]) / torch.sqrt(
            m.running_var[sl, None, None] + m.eps
        ) * m.weight[sl, None, None] + m.bias[sl, None, None]

    total = 0
    for i in range(C):
        sl = slice(i * d, (i + 1) * d)
        h = torch.conv2d(x, block.conv1.weight[sl])
        h = torch.relu(bn(h, block.bn1, sl))
        h = torch.conv2d(h, block.conv2.weight[sl], padding=1)  # dense d -> d conv
        h = torch.relu(bn(h, block.bn2, sl))
        total = total + torch.conv2d(h, block.conv3.weight[:, sl])  # this path's 1x1
    shortcut = bn(torch.conv2d(x, block.shortcut[0].weight), block.shortcut[1])
    expected = torch.relu(bn(total, block.bn3) + shortcut)
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected)


def test_zero_init_residual_flag():
    default = resnet.resnet18()
    assert all(b.bn2.weight.eq(1).all() for b in default.layer1)  # off by default
    model = resnet.ResNet(
        resnet.BasicBlock,
        (1, 1),
        (8, 16),
        10,
        3,
        stem_channels=8,
        small_input=True,
        zero_init_residual=True,
    ).eval()
    assert model.layer1[0].bn2.weight.eq(0).all() and model.layer2[0].bn2.weight.eq(0).all()
    # With F = 0 the identity-shortcut block passes relu(x) = x (x >= 0 after the stem).
    x = model.stem(torch.randn(2, 3, 8, 8))
    with torch.no_grad():
        torch.testing.assert_close(model.layer1(x), x)
    x50 = resnext.resnext50_32x4d()
    assert x50.layer1[0].bn3.weight.eq(1).all()


@pytest.mark.parametrize(
    "build, argument",
    [
        (lambda: resnet.resnet50(num_classes=0), "num_classes"),
        (lambda: resnet.resnet18(num_classes=2.5), "num_classes"),
        (lambda: resnet.resnet18(num_classes=True), "num_classes"),
        (lambda: resnet.resnet18(in_channels=0), "in_channels"),
        (lambda: resnext.resnext50_32x4d(in_channels="3"), "in_channels"),
        (lambda: resnet.resnet_small(num_classes=-1), "num_classes"),
        (lambda: resnext.resnext_small(in_channels=0), "in_channels"),
        (lambda: resnet.resnet_small(blocks_per_stage=0), "blocks_per_stage"),
        (lambda: resnet.BasicBlock(64, 64, stride=3), "stride"),
        (lambda: resnet.BasicBlock(0, 64), "in_channels"),
        (lambda: resnet.Bottleneck(64, 30, groups=4), "width"),
        (lambda: resnext.ResNeXtBlock(64, 64, cardinality=0, bottleneck_width=4), "cardinality"),
        (lambda: resnext.ResNeXtBlock(64, 64, 32, bottleneck_width=0), "bottleneck_width"),
        (lambda: resnet.ResNet(resnet.BasicBlock, (2, 2), (64,)), "layers"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(build, argument):
    with pytest.raises(ValueError, match=argument):
        build()


@pytest.mark.parametrize("factory", [resnet.resnet_small, resnext.resnext_small])
def test_small_variant_learns_sprites(factory):
    """64 offline images, 25 epochs: the model must fit them well below chance.

    The classifier starts near uniform (loss ~ ln 10 = 2.30), so the fall is learning,
    not undoing a bad start. With seeds 0, 1, 2 the last epoch's loss was 0.57-1.11.
    """
    train, _, _ = make_loaders("sprites", batch_size=32, seed=0, num_train=64, num_eval=32)
    torch.manual_seed(0)
    history = fit(factory(), train, epochs=25, lr=3e-3, device="cpu", progress=False, verbose=False)
    first, last = history.train_loss[0], history.train_loss[-1]
    assert first > math.log(10) - 0.2, history.train_loss  # started at chance
    assert math.isfinite(last) and last < math.log(10) - 0.8, history.train_loss


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_plain_block_is_the_residual_block_without_its_shortcut(block):
    """residual=False keeps F and drops the sum: relu(F(x)), and no projection weights."""
    torch.manual_seed(0)
    if block == "basic":
        res, plain = resnet.BasicBlock(8, 16, 2), resnet.BasicBlock(8, 16, 2, residual=False)
    else:
        res, plain = resnet.Bottleneck(8, 4, 2), resnet.Bottleneck(8, 4, 2, residual=False)
    assert plain.shortcut is None
    shortcut = sum(p.numel() for p in res.shortcut.parameters())
    assert shortcut > 0 and count(res) - count(plain) == shortcut
    # Same weights for the shared layers (F): the outputs differ exactly by the shortcut.
    plain.load_state_dict({k: v for k, v in res.state_dict().items() if "shortcut" not in k})
    randomise_batch_norm(res)
    plain.load_state_dict({k: v for k, v in res.state_dict().items() if "shortcut" not in k})
    res.eval(), plain.eval()
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        h = res.relu(res.bn1(res.conv1(x)))
        if block == "basic":
            branch = res.bn2(res.conv2(h))
        else:
            branch = res.bn3(res.conv3(res.relu(res.bn2(res.conv2(h)))))
        torch.testing.assert_close(plain(x), torch.relu(branch))
        torch.testing.assert_close(res(x), torch.relu(branch + res.shortcut(x)))
    with pytest.raises(ValueError, match="residual"):
        resnet.BasicBlock(8, 8, residual=1)


def test_plain_resnet_small_has_the_same_layers_minus_the_projections():
    """The degradation experiment's pair: plain-8 and plain-32 beside ResNet-8 and -32."""
    for blocks in (1, 5):
        res = resnet.resnet_small(blocks_per_stage=blocks)
        plain = resnet.resnet_small(blocks_per_stage=blocks, residual=False)
        projections = sum(
            p.numel() for n, p in res.named_parameters() if "shortcut" in n
        )  # two stage transitions: 1x1 convs 16->32 and 32->64, with their BNs
        assert projections == 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64
        assert count(res) - count(plain) == projections
        assert not any(isinstance(m, resnet.BasicBlock) and m.residual for m in plain.modules())
    # ResNet-20 of He et al. 2016, section 4.2: 0.27M parameters.
    assert round(count(resnet.resnet_small(blocks_per_stage=3)) / 1e6, 2) == 0.27
    narrow = resnet.resnet_small(blocks_per_stage=1, widths=(8, 16, 32))
    assert narrow.stem.conv.out_channels == 8 and narrow.num_features == 32
    with pytest.raises(ValueError, match="widths"):
        resnet.resnet_small(widths=(8, 16))
