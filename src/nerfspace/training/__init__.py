"""Training the encoder on a zoo: data and caches, the training loop, checkpoints, embedding."""
