"""``python -m mltrain_desktop.cli``: the mltrain command."""
from . import main

main()
