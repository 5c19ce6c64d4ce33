"""``python -m cnncourse.train``: see :mod:`cnncourse.train.cli`."""

from .cli import main

if __name__ == "__main__":  # not when something merely imports the package's modules
    raise SystemExit(main())
