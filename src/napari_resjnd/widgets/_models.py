"""Which weights the widgets can offer, and the models already loaded.

Qt-free. A choice is a string: a registry name, or a path to a weights file.
Loaded models are kept so a second run (or the fine-tune widget) reuses them.
"""

from __future__ import annotations

import threading
from pathlib import Path

from psygnal import Signal

from ..core import weights as W
from ..core.model import ResJND

OPEN_FILE = "__open_file__"
#: Prefix of the weight-free classic models in the picker ("classic:chou1995", ...),
#: listed together after the ResJND weights.
CLASSIC = "classic:"


class ModelStore:
    """Loaded models, by source; safe to use from worker threads.

    ``new_weights`` is emitted with a path when a new checkpoint is available
    (fine-tuning finished): the Predict widget refreshes its picker and selects it.
    """

    new_weights = Signal(str)

    def __init__(self):
        self._models: dict[str, ResJND] = {}
        self._files: list[str] = []
        self._lock = threading.Lock()

    def is_loaded(self, source: str) -> bool:
        return source in self._models

    def get(self, source: str) -> ResJND:
        """The model for ``source``, loading it once (a registry entry must be cached:
        workers download first with :func:`~napari_resjnd.core.weights.iter_fetch`)."""
        with self._lock:
            if source not in self._models:
                self._models[source] = W.load_model(source)
            return self._models[source]

    def add_file(self, path: str | Path) -> str:
        s = str(Path(path).expanduser())
        if s not in self._files:
            self._files.append(s)
        return s

    def forget(self, source: str) -> None:
        """Drop a loaded model (its file changed, say)."""
        with self._lock:
            self._models.pop(source, None)

    def choices(self) -> list[tuple[str, str]]:
        """(label, value) pairs: registry entries with their state, fine-tuned
        checkpoints in the model folder, files opened this session, and the
        "Open weights file…" entry."""
        out = []
        for name, entry in W.REGISTRY.items():
            state = (
                "loaded"
                if self.is_loaded(name)
                else "cached"
                if W.is_cached(name)
                else f"will download, {entry.size_text}"
            )
            out.append((f"{name} ({state}, {entry.terms})", name))
        files = [str(p) for p in W.local_models()] + self._files
        for f in dict.fromkeys(files):
            state = "loaded" if self.is_loaded(f) else "file"
            out.append((f"{Path(f).name} ({state})", f))
        from ..core.maps import MODELS, TITLES

        out += [(f"classic: {TITLES[m]} (no weights)", CLASSIC + m) for m in MODELS]
        out.append(("Open weights file…", OPEN_FILE))
        return out


#: One store per process: the predict and fine-tune widgets share loaded models.
STORE = ModelStore()
