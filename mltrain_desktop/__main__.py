"""``python -m mltrain_desktop`` opens the window (the ``mltrain`` command is the CLI)."""
from __future__ import annotations

import sys


def _main() -> int:
    from .gui.app import main
    return main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(_main())
