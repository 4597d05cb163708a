"""anyssl-audio: a toy audio modality for anyssl, the worked example of docs/new-modality.md.

Installed (``pip install ./examples/anyssl-audio``), its ``anyssl.plugins`` entry point calls
``anyssl_audio.plugin:register`` the first time anyssl looks up a name it does not know, so
``anyssl train --modality audio --method simclr`` works with no import of your own.
"""

__version__ = "0.2.0"
