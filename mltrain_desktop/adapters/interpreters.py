"""Finding a Python interpreter with TensorFlow for local jobs.

TensorFlow lives in the job's environment, not in the app: a packaged app (PyInstaller bundle)
holds no TensorFlow and its ``sys.executable`` is the bundle itself, which cannot run a training
script. This module finds the interpreters a local job could use, in this order:

1. the one configured in the app's settings (``settings.json``, written by the Compute view or
   ``set_configured_python()``),
2. ``$MLTRAIN_PYTHON``,
3. the interpreter the app runs on (from source) or the virtual environment it was built from
   (a bundle: recorded by the build), and ``$VIRTUAL_ENV``,
4. ``python3`` / ``python`` on ``PATH``,
5. the default location ``~/.local/share/mltrain-desktop/python`` (``$MLTRAIN_HOME/python``
   when ``MLTRAIN_HOME`` is set),

and checks which of them have TensorFlow with a subprocess that does not import it
(``importlib.util.find_spec``), cached per interpreter file. When none has it,
:class:`NoTensorFlowInterpreter` says what was tried and the command that makes one
(:func:`make_command`). Standard library and platformdirs only; no Qt.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

APP_NAME = "mltrain-desktop"
TF_REQUIREMENT = "tensorflow-cpu==2.21.0"
ENV_VAR = "MLTRAIN_PYTHON"
CHECK_TIMEOUT_S = 30.0

# One subprocess per interpreter: does it run, which Python, is TensorFlow importable (without
# importing it) and which version is installed.
_CHECK = (
    "import importlib.util,sys,json\n"
    "tf=importlib.util.find_spec('tensorflow') is not None\n"
    "v=None\n"
    "if tf:\n"
    "  try:\n"
    "    import importlib.metadata as m\n"
    "    for d in ('tensorflow','tensorflow-cpu','tensorflow-gpu','tensorflow-intel','tensorflow-macos','tf-nightly'):\n"
    "      try:\n"
    "        v=m.version(d); break\n"
    "      except Exception: pass\n"
    "  except Exception: pass\n"
    "print(json.dumps({'tf': tf, 'tf_version': v, 'python': '%d.%d.%d' % sys.version_info[:3],"
    " 'executable': sys.executable}))\n"
)


@dataclasses.dataclass(frozen=True)
class Interpreter:
    """One candidate: where it came from and what the check found."""

    path: str
    source: str                # "configured", "MLTRAIN_PYTHON", "current", "app venv", "PATH", "default location"
    runs: bool = False
    has_tensorflow: bool = False
    tensorflow_version: str | None = None
    python_version: str | None = None
    error: str = ""

    def describe(self) -> str:
        if not self.runs:
            return f"{self.path} ({self.source}): {self.error or 'does not run'}"
        tf = f"TensorFlow {self.tensorflow_version or '(version unknown)'}" if self.has_tensorflow else "no TensorFlow"
        return f"{self.path} ({self.source}): Python {self.python_version}, {tf}"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class NoTensorFlowInterpreter(RuntimeError):
    """No candidate interpreter has TensorFlow; the message lists them and how to make one."""

    def __init__(self, tried: list[Interpreter]):
        self.tried = list(tried)
        self.command = make_command()
        lines = ["No Python interpreter with TensorFlow was found for local jobs."]
        if self.tried:
            lines.append("Tried:")
            lines += [f"  - {c.describe()}" for c in self.tried]
        else:
            lines.append("No Python interpreter was found at all (none configured, none on PATH).")
        lines += ["Make one with:", f"  {self.command}",
                  f"then choose it in the Compute view (Python for local jobs), or set {ENV_VAR} to its path."]
        super().__init__("\n".join(lines))


# -- settings ----------------------------------------------------------------------------------
def settings_path() -> Path:
    """The app-wide settings file (``$MLTRAIN_HOME/settings.json`` or the user config folder)."""
    override = os.environ.get("MLTRAIN_HOME")
    if override:
        return Path(override) / "settings.json"
    import platformdirs
    return Path(platformdirs.user_config_dir(APP_NAME)) / "settings.json"


def _read_settings() -> dict:
    try:
        data = json.loads(settings_path().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def configured_python() -> str | None:
    """The interpreter chosen in the app's settings, or None."""
    value = _read_settings().get("python")
    return value if isinstance(value, str) and value else None


def set_configured_python(path: str | None) -> None:
    """Saves (or, with None, clears) the interpreter for local jobs in the app's settings."""
    file = settings_path()
    data = _read_settings()
    if path:
        data["python"] = str(path)
    else:
        data.pop("python", None)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, file)


# -- locations ---------------------------------------------------------------------------------
def default_location() -> Path:
    """Where the app suggests making an interpreter: ``~/.local/share/mltrain-desktop/python``."""
    override = os.environ.get("MLTRAIN_HOME")
    if override:
        return Path(override) / "python"
    import platformdirs
    return Path(platformdirs.user_data_dir(APP_NAME)) / "python"


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def make_command(location: Path | None = None) -> str:
    """The shell command that makes an interpreter with TensorFlow at the default location."""
    venv = Path(location) if location else default_location()
    home = str(Path.home())
    shown = str(venv)
    if shown.startswith(home + os.sep):
        shown = "~" + shown[len(home):]
    if os.name == "nt":
        return f"py -3 -m venv {shown} && {shown}\\Scripts\\pip install {TF_REQUIREMENT}"
    return f"python3 -m venv {shown} && {shown}/bin/pip install {TF_REQUIREMENT}"


def is_frozen() -> bool:
    """True in a packaged app (PyInstaller bundle), where ``sys.executable`` is not a Python."""
    return bool(getattr(sys, "frozen", False))


def _build_python() -> str | None:
    """The interpreter of the environment the bundle was built from, as the build recorded it."""
    try:
        from .. import _build_info  # type: ignore[attr-defined]  # written by packaging/build.sh
    except ImportError:
        return None
    value = getattr(_build_info, "BUILD_PYTHON", None)
    return value if isinstance(value, str) and value else None


def candidate_paths() -> list[tuple[str, str]]:
    """(path, source) pairs in order of preference, without duplicates; not checked yet."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(path: str | os.PathLike | None, source: str) -> None:
        if not path:
            return
        path = os.path.expanduser(str(path))
        key = os.path.abspath(path)
        if key in seen:
            return
        seen.add(key)
        out.append((path, source))

    add(configured_python(), "configured")
    add(os.environ.get(ENV_VAR), ENV_VAR)
    if not is_frozen():
        add(sys.executable, "current")
    add(_build_python(), "app venv")
    if os.environ.get("VIRTUAL_ENV"):
        add(_venv_python(Path(os.environ["VIRTUAL_ENV"])), "app venv")
    for name in ("python3", "python"):
        found = shutil.which(name)
        if found and not _is_bundle_exe(found):
            add(found, "PATH")
    add(_venv_python(default_location()), "default location")
    return out


def _is_bundle_exe(path: str) -> bool:
    if not is_frozen():
        return False
    try:
        return os.path.samefile(path, sys.executable)
    except OSError:
        return False


# -- checking ----------------------------------------------------------------------------------
_cache: dict[tuple, Interpreter] = {}
_cache_lock = threading.Lock()


def _stat_key(path: str) -> tuple | None:
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    return (os.path.abspath(path), real, st.st_mtime_ns, st.st_size)


def check(path: str, source: str = "given", use_cache: bool = True) -> Interpreter:
    """Runs ``path`` once to see whether it works and has TensorFlow (cached per file)."""
    path = os.path.expanduser(str(path))
    key = _stat_key(path)
    if key is None:
        return Interpreter(path, source, error="not found")
    if not os.access(path, os.X_OK) or os.path.isdir(path):
        return Interpreter(path, source, error="not an executable file")
    if _is_bundle_exe(path):
        return Interpreter(path, source, error="this is the packaged app, not a Python interpreter")
    if use_cache:
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None:
            return dataclasses.replace(hit, source=source)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        proc = subprocess.run([path, "-c", _CHECK], capture_output=True, text=True, timeout=CHECK_TIMEOUT_S,
                              env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        result = Interpreter(path, source, error=f"did not answer within {CHECK_TIMEOUT_S:.0f} s")
    except OSError as exc:
        result = Interpreter(path, source, error=f"cannot run: {exc.strerror or exc}")
    else:
        result = _parse(path, source, proc)
    if use_cache and (result.runs or "did not answer" not in result.error):
        with _cache_lock:
            _cache[key] = result
    return result


def _parse(path: str, source: str, proc: subprocess.CompletedProcess) -> Interpreter:
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return Interpreter(path, source, error=f"does not run as Python: {tail[0][:300]}")
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return Interpreter(path, source, error="is not a Python interpreter (unexpected output)")
    return Interpreter(path, source, runs=True, has_tensorflow=bool(data.get("tf")),
                       tensorflow_version=data.get("tf_version"), python_version=data.get("python"))


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def discover(check_all: bool = True) -> list[Interpreter]:
    """Every candidate, checked (for the Compute view's list). ``check_all=False`` stops at the
    first one with TensorFlow."""
    found = []
    for path, source in candidate_paths():
        interp = check(path, source)
        found.append(interp)
        if not check_all and interp.has_tensorflow:
            break
    return found


def find_tensorflow_python() -> Interpreter:
    """The first candidate with TensorFlow; raises :class:`NoTensorFlowInterpreter` when none has it."""
    tried = discover(check_all=False)
    for interp in tried:
        if interp.has_tensorflow:
            return interp
    raise NoTensorFlowInterpreter(tried)


def default_python() -> str:
    """The interpreter local jobs and local services use when none is set on the target.

    From source this is the interpreter the app runs on (as before). In a packaged app it is the
    configured or discovered interpreter with TensorFlow; raises :class:`NoTensorFlowInterpreter`
    when there is none.
    """
    if not is_frozen():
        return sys.executable
    return find_tensorflow_python().path


def main(argv: list[str] | None = None) -> int:
    """``python -m mltrain_desktop.adapters.interpreters``: lists the candidates."""
    for interp in discover():
        print(("* " if interp.has_tensorflow else "  ") + interp.describe())
    try:
        print(f"local jobs use: {find_tensorflow_python().path}")
        return 0
    except NoTensorFlowInterpreter as exc:
        print(exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
