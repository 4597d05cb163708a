"""anyssl.methods: each method registers itself in ``METHODS`` when its module is imported.

A method is an ``nn.Module`` built as ``Method(encoder, views, **hparams)`` with ``encoder``,
``views``, ``training_step(batch) -> (loss, logs)``, ``on_step_end(step, max_steps)`` and a
``train_defaults`` class attribute (the paper's optimizer settings).
"""

from anyssl.methods.byol import BYOL
from anyssl.methods.clip import CLIP
from anyssl.methods.moco import MoCo, MoCoV1
from anyssl.methods.simclr import SimCLR

__all__ = ["BYOL", "CLIP", "MoCo", "MoCoV1", "SimCLR"]
