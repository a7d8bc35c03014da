"""Renders the app icon (packaging/linux/mltrain-desktop.svg) to PNGs and a Windows .ico.

    python packaging/make_icons.py OUT_DIR

writes ``OUT_DIR/hicolor/{256x256,128x128,48x48}/apps/mltrain-desktop.png``,
``OUT_DIR/hicolor/scalable/apps/mltrain-desktop.svg`` and ``OUT_DIR/mltrain-desktop.ico`` with
Qt's SVG renderer (PySide6, offscreen), so no extra tool is needed. build.sh runs it; on
Windows run it before PyInstaller so the spec finds the .ico.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

SVG = Path(__file__).resolve().parent / "linux" / "mltrain-desktop.svg"
SIZES = (256, 128, 48)
ICO_SIZES = (256, 48, 32, 16)


def render(out_dir: Path, svg: Path = SVG) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # noqa: F841 - Qt needs one
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"cannot render {svg}")

    def image(n: int) -> QImage:
        img = QImage(n, n, QImage.Format.Format_ARGB32_Premultiplied)
        img.fill(Qt.GlobalColor.transparent)
        p = QPainter(img)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(p)
        p.end()
        return img

    written = []
    for n in SIZES:
        dest = out_dir / "hicolor" / f"{n}x{n}" / "apps" / "mltrain-desktop.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not image(n).save(str(dest), "PNG"):
            raise SystemExit(f"cannot write {dest}")
        written.append(dest)
    scalable = out_dir / "hicolor" / "scalable" / "apps" / "mltrain-desktop.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(svg, scalable)
    written.append(scalable)
    ico = out_dir / "mltrain-desktop.ico"
    if image(256).save(str(ico), "ICO"):  # Qt's ico plugin; absent plugins just skip the .ico
        written.append(ico)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    for path in render(Path(sys.argv[1])):
        print(path)
