//! Data pipelines: sources, preprocessing, augmentation, split, shuffle and batching.
