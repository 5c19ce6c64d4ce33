"""Plausible wrong answers for 00_welcome, each swapped into its solution region by
tests/test_wrong_answers.py: exactly the cells in ``fails`` must lose their points, with a
message matching ``says``. The first one also goes through a real nbgrader autograde."""

import torch

from cnncourse.authoring import wrong_answer


@wrong_answer("softmax", fails={"test_softmax_stable"}, says=r"overflow")
def softmax_without_max_shift(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    exps = logits.exp()  # overflows for large logits
    return exps / exps.sum(dim=dim, keepdim=True)


@wrong_answer(
    "softmax", fails={"test_softmax_values", "test_softmax_stable"}, says=r"values differ"
)
def softmax_ignores_dim(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    shifted = logits - logits.max()
    return shifted.exp() / shifted.exp().sum()


@wrong_answer("softmax", fails={"test_softmax_values"}, says=r"no gradient reaches x")
def softmax_detached(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    shifted = (logits - logits.amax(dim=dim, keepdim=True)).detach()  # cuts the graph
    exps = shifted.exp()
    return exps / exps.sum(dim=dim, keepdim=True)


@wrong_answer(
    "softmax",
    fails={"test_softmax_values", "test_softmax_stable"},
    says=r"argument logits in place",
)
def softmax_shifts_in_place(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    logits -= logits.amax(dim=dim, keepdim=True)  # changes the caller's tensor
    exps = logits.exp()
    return exps / exps.sum(dim=dim, keepdim=True)


@wrong_answer(
    "softmax", fails={"test_softmax_values", "test_softmax_stable"}, says=r"dtype torch.float64"
)
def softmax_always_float32(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    shifted = (logits - logits.amax(dim=dim, keepdim=True)).float()
    exps = shifted.exp()
    return exps / exps.sum(dim=dim, keepdim=True)


@wrong_answer("softmax", fails={"test_softmax_stable"}, says=r"-inf logit|nan")
def softmax_shifts_by_min(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    shifted = logits - logits.amin(dim=dim, keepdim=True)  # the wrong end: still overflows
    exps = shifted.exp()
    return exps / exps.sum(dim=dim, keepdim=True)


@wrong_answer(
    "softmax",
    fails={"test_softmax_values", "test_softmax_stable"},
    says=r"calls torch\.Tensor\.softmax, which this exercise asks you to replace",
)
def softmax_calls_torch(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return logits.softmax(dim)  # right values, but the exercise is to write it
