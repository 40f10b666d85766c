"""Validation-only: regularization of ocr_letters mask sampling (32 cycled masks), 32-mask validation ensemble."""
import json, sys
import torch
torch.set_num_threads(1)
from replication.training.data import load_dataset
from replication.training.evaluate import evaluate_nll
from replication.training.train import fit, TrainConfig
from replication.model.made import MADEConfig
wd, drop = float(sys.argv[1]), float(sys.argv[2])
d = load_dataset("ocr_letters")
mc = MADEConfig(input_dim=d.dim, hidden_sizes=[500], dropout=drop, num_masks=32, order_agnostic=True, connectivity_agnostic=True, seed=1234)
m, r = fit(mc, d, TrainConfig(optimizer="adam", lr=1e-3, weight_decay=wd, patience=30, max_epochs=3000, valid_masks=8), progress=False)
print(json.dumps(dict(dataset="ocr_letters", masks=32, wd=wd, dropout=drop, valid8=r.best_valid_nll, valid32=evaluate_nll(m, d.valid, n_masks=32).nats, best_epoch=r.best_epoch, epochs=r.epochs)), flush=True)
