"""The packaged app's entry point (PyInstaller runs this as ``__main__``).

One executable serves every role, chosen by its arguments and the name it was started as:

* ``--supervisor WORKSPACE RUN_ID [--reattach]``: a run's supervisor (the engine starts the
  bundle itself for these: ``supervisor_argv()`` when ``sys.frozen``);
* ``--sweep-driver WORKSPACE RUN_ID [--resume]``: a sweep's detached driver (``driver_argv()``);
* started as ``mltrain`` (the symlink next to it on Linux and macOS, ``mltrain.exe`` on
  Windows) or with ``--cli`` first: the command line, ``mltrain ...``;
* ``--version``: version, commit and build date;
* ``--self-test``: the installation check, window offscreen (``mltrain_desktop.gui.self_test``);
* otherwise the window (``mltrain_desktop.gui.app.main``). With no display, and neither
  ``--self-test`` nor ``--screenshot``, it explains how to run headless and exits 2.

Runs from source too: ``python packaging/entry.py --version``.
"""
from __future__ import annotations

import os
import sys

EXIT_NO_DISPLAY = 2
CLI_NAMES = {"mltrain", "mltrain.exe"}
HEADLESS_PLATFORMS = {"offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay"}


def _restore_library_path() -> None:
    """The bootloader points LD_LIBRARY_PATH at the bundle; programs we start (a Python with
    TensorFlow, docker, mpirun, git) must see the user's own. Each bundle start sets it again."""
    if not getattr(sys, "frozen", False):
        return
    for var in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH"):
        orig = os.environ.pop(f"{var}_ORIG", None)
        if orig is not None:
            os.environ[var] = orig
        elif var in os.environ:
            del os.environ[var]


def _drop_bundle_qt_paths() -> None:
    """PyInstaller's Qt hook points QT_PLUGIN_PATH and QML2_IMPORT_PATH at the bundle's Qt. Roles
    without a window (supervisor, CLI) drop them, so jobs (which may use a Qt of their own) and
    services they start do not inherit them."""
    bundle = getattr(sys, "_MEIPASS", None)
    if not bundle:
        return
    for var in ("QT_PLUGIN_PATH", "QML2_IMPORT_PATH"):
        if os.environ.get(var, "").startswith(bundle):
            del os.environ[var]


def invoked_name(argv0: str) -> str:
    return os.path.basename(argv0 or "").lower()


def has_display() -> bool:
    """Whether a window can open: always on Windows and macOS; on Linux/BSD a DISPLAY, a
    WAYLAND_DISPLAY or a headless Qt platform (QT_QPA_PLATFORM=offscreen) is needed."""
    if sys.platform in ("win32", "darwin"):
        return True
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if platform in HEADLESS_PLATFORMS:
        return True
    if platform.startswith("wayland"):
        return bool(os.environ.get("WAYLAND_DISPLAY"))
    if platform == "xcb":
        return bool(os.environ.get("DISPLAY"))
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def no_display_message(prog: str = "mltrain-desktop") -> str:
    rows = [
        (f"{prog} --self-test", "check this installation headless: the window offscreen, the sample"),
        ("", "trained on a local target, the model registered and checked"),
        (f"QT_QPA_PLATFORM=offscreen {prog}", "open the window offscreen (tests, screenshots)"),
        (f"xvfb-run -a {prog}", "open the window on a virtual screen (Debian: apt install xvfb)"),
        ("mltrain --help", "the command line: every operation of the window, headless"),
        ("mltrain sample", "the whole sample flow, printing status and metrics live"),
    ]
    width = max(len(cmd) for cmd, _ in rows) + 3
    lines = [f"{prog}: no display found (DISPLAY and WAYLAND_DISPLAY are not set), so the window cannot open.",
             "", "To run without a screen:"]
    lines += [f"  {cmd.ljust(width)}{what}" for cmd, what in rows]
    return "\n".join(lines) + "\n"


def _version_line(prog: str) -> str:
    from mltrain_desktop.version_info import version_string
    return f"{prog} {version_string()}"


def main(argv: list[str] | None = None, argv0: str | None = None) -> int:
    _restore_library_path()
    args = list(sys.argv[1:] if argv is None else argv)
    name = invoked_name(sys.argv[0] if argv0 is None else argv0)

    if args[:1] == ["--supervisor"]:
        _drop_bundle_qt_paths()
        from mltrain_desktop.engine.supervisor import main as supervisor_main
        return int(supervisor_main(args[1:]) or 0)

    if args[:1] == ["--sweep-driver"]:
        _drop_bundle_qt_paths()
        from mltrain_desktop.train.hyperdrive.driver import main as driver_main
        return int(driver_main(args[1:]) or 0)

    if name in CLI_NAMES or args[:1] == ["--cli"]:
        if args[:1] == ["--cli"]:
            args = args[1:]
        _drop_bundle_qt_paths()
        from mltrain_desktop.cli import cli
        return _click_main(cli, args)

    if "--version" in args or "-V" in args:
        print(_version_line("mltrain-desktop"))
        return 0

    if "--self-test" in args:
        rest = [a for a in args if a != "--self-test"]
        from mltrain_desktop.gui.self_test import main as self_test_main
        return int(self_test_main(rest) or 0)

    if not has_display():
        if "--screenshot" not in args and not any(a.startswith("--screenshot=") for a in args):
            sys.stderr.write(no_display_message())
            return EXIT_NO_DISPLAY
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # screenshots need no screen

    from mltrain_desktop.gui.app import main as gui_main
    sys.argv = [sys.argv[0], *args]
    return int(gui_main(args) or 0)


def _click_main(cli, args: list[str]) -> int:
    try:
        cli.main(args=args, prog_name="mltrain", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if getattr(sys, "frozen", False):
        import multiprocessing
        multiprocessing.freeze_support()
    sys.exit(main())
