"""The anyssl command line (installed as ``anyssl.cli``)."""
