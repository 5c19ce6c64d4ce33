"""python -m cnncourse.train: flags, errors, torchrun with gloo against one process, resume.

The distributed tests start real processes: ``torchrun --standalone --nproc_per_node=2``
on the CPU (gloo), compared with one plain process given the same global batch.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import BIN, tool_env
from PIL import Image

from cnncourse.train import cli

# LeNet-5 has no batch norm and no dropout: with augmentation off, nothing in a step depends
# on how the batch is split, so 2 processes and 1 must agree up to float rounding.
SMALL = ["--model", "lenet5", "--data", "sprites", "--num-train", "512", "--num-val", "200",
         "--batch-size", "64", "--epochs", "2", "--lr", "0.05", "--no-progress"]  # fmt: skip


def _env() -> dict[str, str]:
    # One thread per process, as torchrun sets for several: both runs then add in the same order.
    return tool_env(OMP_NUM_THREADS="1")


def _train(*args: str, torchrun: int = 0, timeout: int = 240) -> subprocess.CompletedProcess:
    cmd = _command(*args, torchrun=torchrun)
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "last.pt", map_location="cpu", weights_only=False)["model"]


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


# --------------------------------------------------------------------------- flags and errors


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "lenet6"], "--model 'lenet6': unknown model; choose one of lenet5"),
        (["--model", "lenet5", "--epochs", "0"], "--epochs 0: expected a positive int"),
        (["--model", "lenet5", "--lr", "-1"], "--lr -1.0: expected a positive number"),
        (["--model", "lenet5", "--resume"], "--resume: needs --checkpoint DIR"),
        (["--model", "lenet5", "--data", "imagenette"], "--data 'imagenette': unknown dataset"),
        (["--model", "lenet5", "--data", "./no/such/dir"], "no such folder; give a folder with"),
        (["--model", "lenet5", "--label-smoothing", "1"], "--label-smoothing 1.0: expected"),
        (
            ["--model", "alexnet", "--num-train", "8", "--num-val", "8"],
            "--model alexnet: does not take 3x32x32 images",
        ),
        (
            ["--model", "lenet5", "--num-train", "8", "--batch-size", "16"],
            "--batch-size 16: larger than the 8 training images",
        ),
    ],
)
def test_bad_flags_give_a_message_naming_the_flag(args, message, capsys):
    assert cli.main([*args, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m cnncourse.train: error: ")
    assert message in err


def test_the_command_trains_and_prints_a_table(tmp_path, capsys):
    args = [*SMALL, "--epochs", "1", "--num-train", "128", "--num-val", "64", "--device", "cpu"]
    assert cli.main([*args, "--checkpoint", str(tmp_path), "--amp"]) == 0
    out = capsys.readouterr().out
    assert "lenet5: 62,006 parameters | data sprites: 128 training images 3x32x32" in out
    assert "1 process on cpu" in out and "amp" in out
    assert "epoch 1/1: train loss" in out
    assert "best val acc" in out and "test loss" in out
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["config"]["model"] == "lenet5" and len(saved["epochs"]) == 1
    # The same folder again, without --resume, would overwrite a finished run: refused.
    assert cli.main([*args, "--checkpoint", str(tmp_path)]) == 2
    assert "already holds last.pt; pass --resume" in capsys.readouterr().err
    # Resuming with another learning rate would not continue the same run: refused.
    assert cli.main([*args, "--checkpoint", str(tmp_path), "--resume", "--lr", "0.1"]) == 2
    assert "--lr 0.1: " in capsys.readouterr().err


def test_every_reference_model_is_a_choice():
    from cnncourse import models

    assert {"lenet5", "alexnet", "vgg11", "nin", "googlenet", "resnet18", "resnext50_32x4d",
            "resnet_small", "resnext_small"} <= set(cli.MODELS)  # fmt: skip
    assert all(callable(getattr(models, name)) for name in cli.MODELS)


def test_learning_rate_schedule():
    total, warm = 100, 10
    f = [cli.lr_factor(s, total, warm, "cosine") for s in range(total)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0) and f[55] == pytest.approx(0.5)
    assert all(a >= b for a, b in zip(f[9:], f[10:], strict=False))  # decays after warm-up
    assert cli.lr_factor(55, total, warm, "onecycle") == pytest.approx(0.5)
    assert cli.lr_factor(99, total, warm, "constant") == 1.0


def test_an_image_folder_trains(tmp_path, capsys):
    """ImageNet's layout, train/<class>/*.png and val/<class>/*.png, read by ImageFolder."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("val", 4)):
        for c, colour in enumerate(((200, 40, 40), (40, 40, 200))):
            folder = tmp_path / "pets" / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(rng.normal(colour, 30, (40, 48, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    args = ["--model", "resnet_small", "--data", str(tmp_path / "pets"), "--image-size", "32",
            "--batch-size", "8", "--epochs", "1", "--no-progress", "--device", "cpu"]  # fmt: skip
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "data pets: 24 training images 3x32x32, 2 classes" in out
    assert "epoch 1/1" in out and "test loss" not in out  # an image folder has no test split
    (tmp_path / "flat").mkdir()
    assert cli.main([*args[:2], "--data", str(tmp_path / "flat"), *args[4:]]) == 2
    assert "has no train/ or val/ folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- processes


def test_two_gloo_processes_match_one_process(tmp_path):
    """DDP over 2 processes, each with half of every global batch of 64, ends with the
    weights of one process taking the whole batch: the gradients are averaged, not summed,
    and DistributedSampler deals out the same images in the same steps."""
    one, two = tmp_path / "one", tmp_path / "two"
    single = _train(*SMALL, "--no-augment", "--checkpoint", str(one))
    multi = _train(*SMALL, "--no-augment", "--checkpoint", str(two), torchrun=2)
    assert "1 process on cpu" in single.stdout
    assert "2 processes on cpu" in multi.stdout and "(32 per process)" in multi.stdout
    # Rank 0 alone logs: every epoch line appears once, not once per process.
    assert multi.stdout.count("epoch 2/2: train loss") == 1
    a, b = _weights(one), _weights(two)
    diff = _max_diff(a, b)
    print(f"2 gloo processes vs 1: max |weight difference| {diff:.2e}")
    assert diff < 1e-5, f"weights differ by up to {diff:.2e}"
    assert _max_diff(a, _weights_at_init()) > 1e-2  # and they did train
    # Metrics are reduced over both processes: the same numbers, up to rounding.
    h1 = json.loads((one / "history.json").read_text())["epochs"]
    h2 = json.loads((two / "history.json").read_text())["epochs"]
    for r1, r2 in zip(h1, h2, strict=True):
        assert r1["train_loss"] == pytest.approx(r2["train_loss"], abs=1e-5)
        assert r1["val_acc"] == pytest.approx(r2["val_acc"], abs=1e-9)
        assert r1["val_loss"] == pytest.approx(r2["val_loss"], abs=1e-5)


def _weights_at_init() -> dict[str, torch.Tensor]:
    from cnncourse import models

    torch.manual_seed(0)
    return models.lenet5(num_classes=10, in_channels=3).state_dict()


def _command(*args: str, torchrun: int = 0) -> list[str]:
    if torchrun:
        return [str(BIN / "torchrun"), "--standalone", f"--nproc_per_node={torchrun}",
                "-m", "cnncourse.train", *args, "--device", "cpu"]  # fmt: skip
    return [sys.executable, "-m", "cnncourse.train", *args, "--device", "cpu"]


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants at once, as a lost machine would. (torchrun
    starts its workers in sessions of their own: killing its process group misses them.)"""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, queue = [], [pid]
    while queue:
        tree.append(queue.pop())
        queue += children.get(tree[-1], [])
    for p in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


@pytest.mark.parametrize("procs", [0, 2], ids=["1 process", "torchrun 2 processes"])
def test_a_killed_run_resumes_to_the_same_weights(tmp_path, procs):
    """Kill a run with SIGKILL after its second of six epochs, resume it: the weights equal
    those of a run never interrupted, bit for bit (augmentation and shuffling included).
    Under torchrun the whole process group is killed, agent and workers, as a lost node is;
    rank 0 reads the checkpoint on --resume and sends it to the other rank."""
    args = ["--model", "resnet_small", "--data", "sprites", "--num-train", "768",
            "--num-val", "64", "--batch-size", "64", "--epochs", "6", "--no-progress"]  # fmt: skip
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    _train(*args, "--checkpoint", str(whole), torchrun=procs)

    cmd = _command(*args, "--checkpoint", str(broken), torchrun=procs)
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    history, deadline, done = broken / "history.json", time.monotonic() + 180, 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if history.exists():
                done = len(json.loads(history.read_text())["epochs"])
                if done >= 2:
                    break
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed"
        _kill_tree(proc.pid)
    finally:
        _kill_tree(proc.pid)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    saved = torch.load(broken / "last.pt", weights_only=False)
    assert 2 <= saved["epoch"] < 6, f"killed after epoch {saved['epoch']}"

    resumed = _train(*args, "--checkpoint", str(broken), "--resume", torchrun=procs)
    assert f"resuming {broken / 'last.pt'} after epoch {saved['epoch']}/6" in resumed.stdout
    a, b = _weights(whole), _weights(broken)
    assert a.keys() == b.keys()
    unequal = [k for k in a if not torch.equal(a[k], b[k])]
    assert not unequal, f"resumed weights differ in {unequal[:3]} (max {_max_diff(a, b):.2e})"
    h1 = json.loads((whole / "history.json").read_text())["epochs"]
    h2 = json.loads((broken / "history.json").read_text())["epochs"]
    assert [r["val_acc"] for r in h1] == [r["val_acc"] for r in h2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_run_with_amp_and_channels_last(capsys):
    args = [*SMALL, "--device", "cuda", "--amp", "--channels-last", "--epochs", "1"]
    assert cli.main(args) == 0
    assert "on cuda:0" in capsys.readouterr().out
