"""anyssl.methods: each method registers itself in ``METHODS`` when its module is imported.

A method is an ``nn.Module`` built as ``Method(encoder, views, **hparams)`` with ``encoder``,
``views``, ``training_step(batch) -> (loss, logs)``, ``on_step_end(step, max_steps)`` and a
``train_defaults`` class attribute (the paper's optimizer settings).
"""

from anyssl.methods.barlowtwins import BarlowTwins
from anyssl.methods.byol import BYOL
from anyssl.methods.clip import CLIP
from anyssl.methods.dino import DINO
from anyssl.methods.moco import MoCo, MoCoV1
from anyssl.methods.mocov3 import MoCoV3
from anyssl.methods.nnclr import NNCLR
from anyssl.methods.simclr import SimCLR
from anyssl.methods.simsiam import SimSiam
from anyssl.methods.swav import SwAV
from anyssl.methods.vicreg import VICReg

__all__ = ["BYOL", "BarlowTwins", "CLIP", "DINO", "MoCo", "MoCoV1", "MoCoV3", "NNCLR", "SimCLR",
           "SimSiam", "SwAV", "VICReg"]
