"""Graph modality (being built)."""
