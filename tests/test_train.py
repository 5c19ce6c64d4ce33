"""cnncourse.train: fit learns, records history, respects budgets and grading mode."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cnncourse.train import History, evaluate, fit, predict
from cnncourse.utils import seed_everything


def _blobs(n=512, seed=0):
    """Two well-separated Gaussian classes as 1x4x4 'images': learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 1, 4, 4, generator=g) + (y.float() * 2 - 1).view(-1, 1, 1, 1) * 1.5
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=g)


def _model():
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))


def test_fit_reduces_loss_and_records_history(capsys):
    seed_everything(0)
    model, loader = _model(), _blobs()
    before = evaluate(model, loader, device="cpu")
    h = fit(model, loader, _blobs(seed=1), epochs=3, device="cpu", progress=False)
    assert isinstance(h, History) and h.epochs == 3
    assert len(h.val_loss) == len(h.val_acc) == len(h.epoch_time) == 3
    assert h.train_loss[-1] < h.train_loss[0] and h.train_loss[-1] < before["loss"]
    assert h.val_acc[-1] > 0.95 and not h.stopped_early
    assert set(h.last()) == {"train_loss", "train_acc", "val_loss", "val_acc"}
    assert "epoch 3/3" in capsys.readouterr().out


def test_evaluate_restores_mode_and_counts():
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 2)).train()
    out = evaluate(model, _blobs(n=100), device="cpu")
    assert out["n"] == 100 and 0 <= out["acc"] <= 1 and model.training
    preds, labels = predict(model, _blobs(n=64), device="cpu")
    assert preds.shape == labels.shape == (64,)


def test_predict_and_evaluate_honour_max_batches(monkeypatch):
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 2)).train()
    loader = DataLoader(TensorDataset(torch.randn(512, 1, 4, 4), torch.arange(512) % 2), 32)
    preds, labels = predict(model, loader, device="cpu", max_batches=3)
    assert preds.shape == labels.shape == (96,) and model.training
    assert torch.equal(labels, torch.arange(96) % 2)  # the first three batches, in order
    assert evaluate(model, loader, device="cpu", max_batches=2)["n"] == 64
    with pytest.raises(ValueError, match="max_batches="):
        predict(model, loader, device="cpu", max_batches=0)
    # Under nbgrader both default to 5 batches, like fit.
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert predict(model, loader, device="cpu")[0].shape == (160,)
    assert evaluate(model, loader, device="cpu")["n"] == 160


def test_evaluate_uses_eval_mode():
    # Dropout at p=1 zeroes everything in training mode; in eval mode it is the identity.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Dropout(1.0), nn.Linear(16, 2))
    with torch.no_grad():
        model[2].weight.copy_(torch.tensor([[-1.0] * 16, [1.0] * 16]))
        model[2].bias.zero_()
    assert evaluate(model, _blobs(), device="cpu")["acc"] > 0.95


def test_max_batches_and_time_budget():
    calls = []

    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = _model()

        def forward(self, x):
            calls.append(1)
            return self.inner(x)

    fit(Counting(), _blobs(), epochs=2, max_batches=3, device="cpu", progress=False, verbose=False)
    assert len(calls) == 6
    calls.clear()
    h = fit(
        Counting(),
        _blobs(),
        epochs=50,
        time_budget=1e-6,
        device="cpu",
        progress=False,
        verbose=False,
    )
    assert h.stopped_early and h.epochs == 1 and len(calls) == 1


def test_grading_mode_shortens_training(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    seen = []
    model = _model()
    model.register_forward_hook(lambda m, i, o: seen.append(1))
    fit(model, _blobs(), epochs=1, device="cpu", progress=False, verbose=False)
    assert len(seen) == 5  # 512 / 32 = 16 batches normally


def test_progress_bar_writes_to_stdout_not_stderr(capsys):
    fit(_model(), _blobs(), epochs=1, device="cpu", progress=True, verbose=False)
    captured = capsys.readouterr()
    assert captured.err == ""  # nbgrader fails any graded cell that writes to stderr


def test_progress_bar_does_not_change_the_batch_order():
    """Showing a bar must not consume a shuffle seed: same seed, same results either way."""
    histories = []
    for progress in (False, True, False):
        seed_everything(0)
        model = _model()
        h = fit(model, _blobs(), _blobs(seed=1), epochs=2, device="cpu", progress=progress,
                verbose=False)  # fmt: skip
        histories.append((h.train_loss, h.val_loss, model[1].weight.detach().clone()))
    for other in histories[1:]:
        assert other[0] == histories[0][0] and other[1] == histories[0][1]
        assert torch.equal(other[2], histories[0][2])


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"epochs": 0}, "epochs="),
        ({"time_budget": -1}, "time_budget="),
        ({"max_batches": 0}, "max_batches="),
    ],
)
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        fit(_model(), _blobs(), **{"device": "cpu", **kwargs})


def test_empty_loader_is_an_error():
    empty = DataLoader(TensorDataset(torch.empty(0, 1, 4, 4), torch.empty(0, dtype=torch.long)))
    with pytest.raises(ValueError, match="produced no batches"):
        fit(_model(), empty, device="cpu", progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_amp_and_channels_last_train():
    seed_everything(0)
    h = fit(
        nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(128, 2)),
        _blobs(),
        epochs=3,
        device="cuda",
        progress=False,
        verbose=False,
    )
    assert h.device.startswith("cuda") and h.train_loss[-1] < h.train_loss[0]
