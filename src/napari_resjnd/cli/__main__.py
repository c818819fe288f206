"""``python -m napari_resjnd.cli``: what torchrun launches."""

import sys

from . import main

sys.exit(main())
