//! Weight initializers (Keras defaults) from a seed.
