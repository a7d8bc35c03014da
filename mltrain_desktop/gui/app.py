"""``mltrain-desktop`` / ``python -m mltrain_desktop``: the QApplication and its options.

    mltrain-desktop [--workspace PATH] [--theme system|light|dark] [--screenshot DIR]

Other modules may add options (the packager's ``--self-test``) with :func:`register_option`:
``register_option(add_arguments, handle)``; ``handle(args, app)`` returns an exit code to stop
there, or None to go on and open the window. A module named in :data:`OPTION_MODULES` that
defines ``register_app_options(register_option)`` is imported and asked to register its own.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable

APP_NAME = "MLTrain Desktop"
ORG_NAME = "MLTrain"

_EXTENSIONS: list[tuple[Callable[[argparse.ArgumentParser], None], Callable]] = []
OPTION_MODULES = ("mltrain_desktop.gui.self_test",)
_loaded_option_modules: set[str] = set()


def register_option(add_arguments: Callable[[argparse.ArgumentParser], None], handle: Callable) -> None:
    """Adds options to the command line; ``handle(args, app) -> int | None`` runs after the QApplication."""
    _EXTENSIONS.append((add_arguments, handle))


def _load_option_modules() -> None:
    import importlib
    for name in OPTION_MODULES:
        if name in _loaded_option_modules:
            continue
        _loaded_option_modules.add(name)
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        hook = getattr(module, "register_app_options", None)
        if callable(hook):
            hook(register_option)


def build_parser() -> argparse.ArgumentParser:
    _load_option_modules()
    p = argparse.ArgumentParser(prog="mltrain-desktop", description="The MLTrain Desktop window: train TensorFlow "
                                "models on this machine the way Azure ML does in the cloud.")
    p.add_argument("--workspace", metavar="PATH", help="open this workspace (default: the last one opened)")
    p.add_argument("--run", metavar="RUN_ID", help="show this run once the workspace is open")
    p.add_argument("--sweep", metavar="RUN_ID", help="show this sweep (HyperDriveRun) once the workspace is open")
    p.add_argument("--theme", choices=("system", "light", "dark"), default="system",
                   help="colour palette (default: follow the system)")
    p.add_argument("--screenshot", metavar="DIR", help="open each view on the workspace, save a PNG of each "
                   "into DIR, and exit")
    p.add_argument("--size", default="1280x820", help="window size for --screenshot (WxH)")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    for add, _handle in _EXTENSIONS:
        add(p)
    return p


def _version() -> str:
    from ..version_info import version_string
    return version_string()


def configure_settings() -> None:
    """Organisation/application names; settings under MLTRAIN_HOME/settings when that is set."""
    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtGui import QGuiApplication
    QCoreApplication.setOrganizationName(ORG_NAME)
    QCoreApplication.setApplicationName(APP_NAME)
    QGuiApplication.setDesktopFileName("mltrain-desktop")  # ties the window to the desktop entry's icon
    home = os.environ.get("MLTRAIN_HOME")
    if home:
        folder = str(Path(home) / "settings")
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, folder)
        QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, folder)


def dark_palette():
    from PySide6.QtGui import QColor, QPalette
    p = QPalette()
    c = {
        QPalette.ColorRole.Window: "#2b2d31", QPalette.ColorRole.WindowText: "#e6e6e6",
        QPalette.ColorRole.Base: "#1e1f22", QPalette.ColorRole.AlternateBase: "#26282c",
        QPalette.ColorRole.ToolTipBase: "#3c3f45", QPalette.ColorRole.ToolTipText: "#e6e6e6",
        QPalette.ColorRole.Text: "#e6e6e6", QPalette.ColorRole.Button: "#34363b",
        QPalette.ColorRole.ButtonText: "#e6e6e6", QPalette.ColorRole.BrightText: "#ff5555",
        QPalette.ColorRole.Link: "#6ea8fe", QPalette.ColorRole.Highlight: "#3d6fb6",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.PlaceholderText: "#8a8f98",
    }
    for role, color in c.items():
        p.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#777a80"))
    return p


def apply_theme(app, theme: str = "system") -> str:
    """Fusion style with a light or dark palette; 'system' follows the platform's colour scheme."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QStyleFactory
    from . import resources
    app.setStyle(QStyleFactory.create("Fusion"))
    dark = theme == "dark" or (theme == "system" and app.styleHints().colorScheme() == Qt.ColorScheme.Dark)
    app.setPalette(dark_palette() if dark else app.style().standardPalette())
    resources.clear_cache()
    return "dark" if dark else "light"


def freeze_startup_objects() -> None:
    """Moves everything made so far (modules, widgets) out of the garbage collector's sight.

    A full collection otherwise walks every Qt wrapper and module object: ~50 ms on the GUI
    thread, now and then, while charts update. What is allocated later is still collected.
    """
    import gc
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, qt_args = parser.parse_known_args(argv)
    from PySide6.QtWidgets import QApplication

    configure_settings()
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    from .resources import icon
    app.setWindowIcon(icon("app"))
    apply_theme(app, args.theme)
    if args.theme == "system":
        app.styleHints().colorSchemeChanged.connect(lambda _s: apply_theme(app, "system"))
    for _add, handle in _EXTENSIONS:
        rc = handle(args, app)
        if rc is not None:
            return int(rc)

    from .main_window import MainWindow, initial_workspace
    window = MainWindow()
    if args.screenshot:
        from .views.screenshot_tour import ScreenshotTour
        w, _, h = args.size.partition("x")
        window.resize(int(w), int(h))
        tour = ScreenshotTour(window, Path(args.screenshot), args.workspace)
        window.show()
        freeze_startup_objects()
        tour.start()
        rc = app.exec()
        window.shutdown()
        return rc or tour.exit_code
    path = initial_workspace(args.workspace)
    window.show()
    freeze_startup_objects()
    if path:
        if args.run:
            window.after_open = lambda: window.show_run(args.run)
        elif args.sweep:
            window.after_open = lambda: window.show_sweep(args.sweep)
        window.open_workspace(path)
    rc = app.exec()
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
