"""Image modality: batched on-device augmentations, ResNet/small-CNN encoders, image datasets."""
