"""Validation-only hyperparameter sweep for the UCI sets (test split never touched)."""
import json, sys, time
import torch
torch.set_num_threads(1)
from replication.training.data import load_dataset
from replication.training.train import fit, TrainConfig
from replication.model.made import MADEConfig
sets = sys.argv[1].split(",")
grid_single = [(0.0, 0.0), (1e-2, 0.3), (3e-2, 0.0), (1e-3, 0.3), (0.0, 0.5), (1e-2, 0.0)]
grid_masks = [(0.0, 0.0), (1e-3, 0.0), (1e-2, 0.0), (0.0, 0.2)]
out = open(f"runs/uci_sweep_{sys.argv[1].replace(',', '_')}.jsonl", "a")
for name in sets:
    d = load_dataset(name)
    for variant, grid in (("single", grid_single), ("masks", grid_masks)):
        for wd, drop in grid:
            k = 1 if variant == "single" else 32
            mc = MADEConfig(input_dim=d.dim, hidden_sizes=[500], dropout=drop, num_masks=k,
                            order_agnostic=k > 1, connectivity_agnostic=k > 1)
            tc = TrainConfig(optimizer="adam", lr=1e-3, weight_decay=wd, patience=20, max_epochs=400,
                             valid_masks=1 if k == 1 else 8)
            t = time.time()
            m, r = fit(mc, d, tc, progress=False)
            row = dict(dataset=name, variant=variant, wd=wd, dropout=drop, valid=r.best_valid_nll,
                       best_epoch=r.best_epoch, epochs=r.epochs, seconds=time.time() - t)
            print(json.dumps(row), flush=True); out.write(json.dumps(row) + "\n"); out.flush()
