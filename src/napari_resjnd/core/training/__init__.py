"""Training ResJND: fine-tuning on pairs in memory, and dataset-scale training from pair folders.

- :mod:`.pairs`: pristine/target pairs, patches from boxes, masks or a grid, splits;
- :mod:`.config`: run settings and presets (the defaults the CLI and the widgets show);
- :mod:`.loop`: the one training loop (optimiser, validation, divergence guard, early stop);
- :mod:`.checkpoints`: best weights, history, resume files and their checks;
- :mod:`.finetune`: fine-tuning on pairs in memory;
- :mod:`.folders`: pair folders through DataLoader workers, one process or many (DDP);
- :mod:`.interrupts`: Ctrl-C during a run, never lost and never half-way through a checkpoint.
"""

from .config import FinetuneConfig, FinetuneResult
from .finetune import finetune, iter_finetune
from .folders import iter_train
from .pairs import Pair, load_pair_folder, make_pair

__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "Pair",
    "finetune",
    "iter_finetune",
    "iter_train",
    "load_pair_folder",
    "make_pair",
]
