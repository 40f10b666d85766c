"""Validation-only: ocr_letters mask sampling with fewer cycled masks (K) or a wider layer.

The 32-mask run of `make replicate` reached a validation NLL of 32.39 (32-mask ensemble); regularization
made it worse (ocr_masks.log), so capacity per ordering is the suspect. Each line: K, hidden sizes,
validation NLL of the K-mask ensemble (all trained masks), best epoch, epochs, training seconds.
"""
import json, sys
import torch
torch.set_num_threads(1)
from replication.training.data import load_dataset
from replication.training.evaluate import evaluate_nll
from replication.model.made import MADEConfig
from replication.training.train import TrainConfig, fit

d = load_dataset("ocr_letters")
settings = [(8, [500]), (4, [500]), (16, [500]), (32, [1000])]
for k, hidden in settings[int(sys.argv[1]) if len(sys.argv) > 1 else 0:]:
    mc = MADEConfig(input_dim=d.dim, hidden_sizes=hidden, num_masks=k, order_agnostic=True, connectivity_agnostic=True, seed=1234)
    tc = TrainConfig(optimizer="adam", lr=1e-3, patience=30, max_epochs=3000, valid_masks=min(8, k))
    model, r = fit(mc, d, tc, progress=False)
    valid = evaluate_nll(model, d.valid, n_masks=k).nats
    print(json.dumps(dict(dataset="ocr_letters", masks=k, hidden=hidden, valid_ensemble=valid, best_epoch=r.best_epoch, epochs=r.epochs, seconds=round(r.seconds))), flush=True)
