"""GUI tests run headless: pick Qt's offscreen platform before anything imports Qt."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
