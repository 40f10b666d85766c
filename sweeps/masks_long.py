"""Validation-only: mask-sampling runs that hit the first sweep's 400-epoch cap, run to early stopping."""
import json, sys
import torch
torch.set_num_threads(1)
from replication.training.data import load_dataset
from replication.training.train import fit, TrainConfig
from replication.model.made import MADEConfig
for name, drop in [("dna", 0.2), ("dna", 0.0), ("mushrooms", 0.0), ("mushrooms", 0.2)]:
    d = load_dataset(name)
    mc = MADEConfig(input_dim=d.dim, hidden_sizes=[500], dropout=drop, num_masks=32, order_agnostic=True, connectivity_agnostic=True, seed=1234)
    m, r = fit(mc, d, TrainConfig(optimizer="adam", lr=1e-3, patience=30, max_epochs=3000, valid_masks=8), progress=False)
    print(json.dumps(dict(dataset=name, dropout=drop, valid=r.best_valid_nll, best_epoch=r.best_epoch, epochs=r.epochs, seconds=r.seconds)), flush=True)
