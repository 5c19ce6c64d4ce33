"""cnncourse.train.fast: whitening, batch augmentation against per-image references, the recipe
learns and stops at its target, bad input is named. CUDA parts skip without a GPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnncourse.data import load_dataset
from cnncourse.train import fast
from cnncourse.train.fast import FastNet, batch_flip_translate, train_fast, whitening_filters


def test_whitening_filters_decorrelate_patches():
    g = torch.Generator().manual_seed(0)
    # Strongly correlated channels and neighbours: a blurred grey image plus a little colour.
    grey = F.avg_pool2d(torch.rand(64, 1, 34, 34, generator=g), 3, stride=1)
    images = grey.repeat(1, 3, 1, 1) + 0.1 * torch.rand(64, 3, 32, 32, generator=g)
    w = whitening_filters(images, eps=0.0)
    assert w.shape == (24, 3, 2, 2)
    assert torch.equal(w[12:], -w[:12])
    out = F.conv2d(images.double(), w[:12].double())  # (N, 12, 31, 31)
    flat = out.transpose(0, 1).reshape(12, -1)
    cov = torch.cov(flat)
    assert torch.allclose(cov, torch.eye(12, dtype=cov.dtype), atol=1e-6), cov.diagonal()
    with pytest.raises(ValueError, match="images: expected"):
        whitening_filters(torch.rand(3, 32, 32))


def test_fastnet_shapes_and_whitening():
    net = FastNet(num_classes=7, in_channels=1, widths=(8, 16, 16))
    x = torch.randn(5, 1, 32, 32)
    assert net(x).shape == (5, 7)
    assert net.forward_features(x).shape == (5, 16, 3, 3)  # 31 -> 15 -> 7 -> 3
    net.whiten(x)
    assert not net.whiten_conv.weight.requires_grad
    assert torch.equal(net.whiten_conv.weight, whitening_filters(x))
    with pytest.raises(ValueError, match="3 channels, but this FastNet takes 1"):
        net.whiten(torch.randn(5, 3, 32, 32))
    with pytest.raises(ValueError, match="widths="):
        FastNet(widths=(8, 16))


def test_batch_augmentation_matches_per_image_flip_and_shifted_crop():
    x = torch.randn(64, 3, 8, 8)
    seed = 3
    out = batch_flip_translate(x, 2, torch.Generator().manual_seed(seed))
    # The same draws, in the same order, applied one image at a time with torch's own ops.
    g = torch.Generator().manual_seed(seed)
    flip = torch.rand(64, generator=g) < 0.5
    dy = torch.randint(0, 5, (64, 1), generator=g)
    dx = torch.randint(0, 5, (64, 1), generator=g)
    for i in range(64):
        img = x[i].flip(-1) if flip[i] else x[i]
        padded = F.pad(img[None], (2, 2, 2, 2), mode="reflect")[0]
        top, left = dy[i].item(), dx[i].item()
        assert torch.equal(out[i], padded[:, top : top + 8, left : left + 8]), i
    assert 10 < flip.sum() < 54 and len(set(dx.flatten().tolist())) == 5
    flipped_only = batch_flip_translate(x, 0, torch.Generator().manual_seed(1))
    for a, b in zip(flipped_only, x, strict=True):
        assert torch.equal(a, b) or torch.equal(a, b.flip(-1))
    with pytest.raises(ValueError, match="shift="):
        batch_flip_translate(x, 8)


def test_the_recipe_learns_sprites_and_stops_at_its_target():
    train = load_dataset("sprites", "train", num_samples=1536)
    val = load_dataset("sprites", "val", num_samples=300)
    r = train_fast(
        train, val, epochs=6, batch_size=128, lr=1.0, widths=(16, 32, 32), target=0.6,
        device="cpu", verbose=False,
    )  # fmt: skip
    assert r.time_to_target is not None, r.history
    assert r.val_acc >= 0.6 and r.epochs_to_target == len(r.history) <= 6
    assert r.time_to_target == r.history[-1]["seconds"] == r.train_seconds
    assert [row["epoch"] for row in r.history] == list(range(1, len(r.history) + 1))


def test_the_same_seed_gives_the_same_run():
    train = load_dataset("sprites", "train", num_samples=256)
    val = load_dataset("sprites", "val", num_samples=64)
    kw = dict(epochs=2, batch_size=64, widths=(8, 16, 16), device="cpu", verbose=False)
    a, b = train_fast(train, val, **kw), train_fast(train, val, **kw)
    c = train_fast(train, val, seed=1, **kw)
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
    assert [r["train_loss"] for r in a.history] != [r["train_loss"] for r in c.history]


def test_the_recipe_trains_any_model_and_cuts_fractional_epochs():
    from cnncourse import models

    train = load_dataset("sprites", "train", num_samples=256)
    val = load_dataset("sprites", "val", num_samples=64)
    torch.manual_seed(0)
    net = models.lenet5(num_classes=10, in_channels=3)
    before = [p.clone() for p in net.parameters()]
    r = train_fast(train, val, model=net, epochs=1.5, batch_size=64, device="cpu", verbose=False)
    assert r.model is net and len(r.history) == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(epochs=0), "epochs=0"),
        (dict(batch_size=10_000), "batch_size=10000: expected a positive int at most the 64"),
        (dict(lr=0), "lr=0"),
        (dict(warmup=1.0), "warmup=1.0"),
        (dict(target=94), "target=94: expected an accuracy"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    train = load_dataset("sprites", "train", num_samples=64)
    with pytest.raises(ValueError, match=message):
        train_fast(train, train, device="cpu", verbose=False, **{"batch_size": 32, **kwargs})
    with pytest.raises(ValueError, match="expected cnncourse ImageDatasets"):
        train_fast([(torch.zeros(3, 32, 32), 0)], train, device="cpu")


def test_the_command_reports_an_offline_way_out(capsys, tmp_path):
    code = fast.main(["--data", "cifar10", "--data-root", str(tmp_path), "--device", "cpu"])
    assert code == 2
    err = capsys.readouterr().err
    assert "python -m cnncourse.train.fast: error:" in err and "sprites" in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_recipe_with_autocast_channels_last_and_compile():
    train = load_dataset("sprites", "train", num_samples=2048)
    val = load_dataset("sprites", "val", num_samples=500)
    r = train_fast(train, val, epochs=4, batch_size=256, lr=1.0, device="cuda", verbose=False)
    assert r.device.startswith("cuda") and r.val_acc > 0.5
    c = train_fast(train, val, epochs=1, batch_size=256, compile=True, device="cuda", verbose=False)
    assert c.history[0]["val_acc"] > 0.1
