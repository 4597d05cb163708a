"""anyssl plugin of the lightly comparison: registers ``_backbone.PeerCNN`` as the image encoder
``peer_cnn``, so ``anyssl.api.train(..., encoder="peer_cnn", plugins=["_peer_plugin"])`` trains
exactly the module the lightly side trains (README "Extending anyssl")."""

from __future__ import annotations

from _backbone import PeerCNN

from anyssl.registry import ENCODERS

__all__ = ["peer_cnn"]


@ENCODERS.register("peer_cnn", scope="image",
                   description="smallcnn in plain torch (benchmarks/peers/_backbone.py)")
def peer_cnn(in_channels: int = 1, image_size: int = 28, width: int = 32) -> PeerCNN:
    """``PeerCNN`` shaped for the dataset (``in_channels``, ``image_size``); ``out_dim = 4w``."""
    return PeerCNN(in_channels, image_size, width)
