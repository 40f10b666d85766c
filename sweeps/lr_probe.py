"""Validation-only probe: does a lower learning rate after the 200-epoch cap help the K-mask MNIST models?

Loads a finished run's best model and continues it with Adam at a lower rate (fresh optimizer state),
reporting the validation NLL of the 32-mask ensemble (the test split is never touched).
"""
import json, sys
import torch
torch.set_num_threads(1)
from replication.training.data import load_dataset
from replication.training.evaluate import evaluate_nll
from replication.training.runs import load_model
from replication.training.train import Trainer, TrainConfig

run_dir, lr, epochs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
d = load_dataset("binarized_mnist")
model = load_model(run_dir)
print(json.dumps(dict(run=run_dir, lr=0, epoch=0, valid32=evaluate_nll(model, d.valid, n_masks=32).nats)), flush=True)
cfg = TrainConfig(optimizer="adam", lr=lr, patience=epochs, max_epochs=epochs, valid_masks=4)
def report(t):
    if t.epoch % 5 == 0:
        print(json.dumps(dict(run=run_dir, lr=lr, epoch=t.epoch, train=t.history[-1]["train_nll"], valid4=t.history[-1]["valid_nll"], valid32=evaluate_nll(t.model, d.valid, n_masks=32).nats)), flush=True)
Trainer(model, d, cfg, progress=False).run(report)
