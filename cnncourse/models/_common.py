"""What every model file shares: the one weight-initialisation function.

(The argument check the models share with :mod:`cnncourse.shapes` is
:func:`cnncourse._checks.positive_int`.)
"""

from __future__ import annotations

from torch import nn

__all__ = ["init_weights"]


def init_weights(module: nn.Module, nonlinearity: str = "relu") -> None:
    """Initialise ``module`` and all its children in place; call it at the end of ``__init__``.

    - convolutions: He (Kaiming) normal with ``fan_in`` = C_in/groups * kH * kW, which keeps
      the variance of activations roughly constant layer after layer through ReLUs (He et
      al. 2015); bias zero. (torchvision uses ``fan_out``; with batch norm after every
      conv it makes no difference, but without it, as in GoogLeNet's paper form, a 1x1
      reduce from 832 to 32 channels would multiply the signal by sqrt(832/32) ~ 5.)
    - batch norm: weight 1, bias 0, so each block starts as a plain normalisation.
    - linear: He normal with ``fan_in`` too, except the last (the classifier): normal
      with std 0.01; bias zero.

    ``nonlinearity`` ("relu", "tanh", "sigmoid", "linear") sets the gain for networks
    that do not use ReLU, such as the classic LeNet.
    """
    if nonlinearity not in {"relu", "tanh", "sigmoid", "linear"}:
        raise ValueError(
            f"nonlinearity={nonlinearity!r}: expected 'relu', 'tanh', 'sigmoid' or 'linear'"
        )
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity=nonlinearity)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity=nonlinearity)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    # The classifier (the last linear layer) starts small, so the first predictions are
    # close to uniform and the first loss close to ln(num_classes): He init there gives
    # confident random logits that the optimiser must first undo.
    last = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if last:
        nn.init.normal_(last[-1].weight, std=0.01)
