"""Training: the recipe schema, data sets, optimizers, training, checkpoints, evaluation and run folders."""
