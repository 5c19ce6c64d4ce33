"""Argument checks shared by the calculators, the layers and the models.

A private module at the bottom of the package (it imports nothing from ``cnncourse``), so
``shapes``, ``layers``, ``models``, ``data`` and ``train`` can all use it without cycles.
"""

from __future__ import annotations

__all__ = ["positive_int"]


def positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is a positive int, else raise ``ValueError`` naming ``name``.

    ``bool`` is an ``int`` subclass, but ``True`` channels is a bug, not a 1: it is refused.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}: expected a positive int")
    return value
