"""Built-in modality plugins (installed as ``anyssl.modalities``)."""
