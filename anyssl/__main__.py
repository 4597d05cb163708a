"""``python -m anyssl ...`` runs the ``anyssl`` command, so torch's launcher can start it:
``torchrun --nproc-per-node 2 -m anyssl train ...``."""

from anyssl.cli.app import main

if __name__ == "__main__":
    main()
