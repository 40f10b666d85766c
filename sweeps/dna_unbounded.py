"""Validation-only: DNA mask sampling as the official command (new mask every update, 300-mask ensemble)."""
import json
import torch
torch.set_num_threads(1)
from replication.training.data import load_dataset
from replication.training.evaluate import evaluate_nll
from replication.training.train import fit, TrainConfig
from replication.model.made import MADEConfig
d = load_dataset("dna")
for k, drop in [(0, 0.2), (0, 0.0), (32, 0.2)]:
    mc = MADEConfig(input_dim=180, hidden_sizes=[500], dropout=drop, num_masks=k, order_agnostic=True, connectivity_agnostic=True, seed=1234)
    m, r = fit(mc, d, TrainConfig(optimizer="adam", lr=1e-3, patience=30, max_epochs=3000, valid_masks=8), progress=False)
    ens = {n: evaluate_nll(m, d.valid, n_masks=n).nats for n in (32, 300)}
    print(json.dumps(dict(masks=k, dropout=drop, best_epoch=r.best_epoch, valid8=r.best_valid_nll, valid32=ens[32], valid300=ens[300], seconds=r.seconds)), flush=True)
