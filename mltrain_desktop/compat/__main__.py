"""``python -m mltrain_desktop.compat script.py [args]``: runs an Azure ML SDK v1 script unchanged."""
from __future__ import annotations

import sys

from ..domain.errors import MLTrainError  # not core.errors: a job imports only the standard library
from . import CompatRefused, run_script


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job = bool(argv) and argv[0] == "--job"
    argv = argv[1:] if job else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m mltrain_desktop.compat [--job] SCRIPT.py [ARGS...]\n"
              "Runs SCRIPT.py with the azureml names (azureml.core, azureml.train.dnn, ...) served by MLTrain Desktop;\n"
              "--job: inside a job, serve only azureml.core.Run (standard library only).")
        return 0 if argv else 2
    try:
        run_script(argv[0], argv[1:], job=job)
    except CompatRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except MLTrainError as exc:
        if not str(exc).startswith(f"script {argv[0]} "):
            raise  # the script's own error keeps its traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
