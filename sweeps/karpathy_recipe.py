"""karpathy/pytorch-made's MNIST recipe, rebuilt on this library, to place our no-direct 1x500 rows against it.

Its recipe (read from its run.py, not copied): one hidden layer of 500 ReLU units, no direct connections, one
random ordering, PyTorch's default init, Adam 1e-3 with weight decay 1e-4, the rate divided by 10 after epoch 45,
100 epochs, minibatches of 100 taken in order (no shuffling), no early stopping. Its README's numbers come from
the *validation* split (its script loads `valid_data` as its test set); this script reports both splits, so
that the test number is comparable with our tables. Usage: `.venv/bin/python sweeps/karpathy_recipe.py SEED`.
"""

import json
import sys
import time

import torch
import torch.nn.functional as F

from replication.training.data import load_dataset
from replication.training.evaluate import evaluate_nll
from replication.model.made import MADE

torch.set_num_threads(1)
seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1234
torch.manual_seed(seed)
data = load_dataset("binarized_mnist")
model = MADE(input_dim=data.dim, hidden_sizes=[500], direct=False, random_ordering=True, seed=seed)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=45, gamma=0.1)
started = time.perf_counter()
for epoch in range(100):
    model.train()
    for i in range(0, data.train.shape[0] - 99, 100):
        batch = data.train[i : i + 100]
        loss = F.binary_cross_entropy_with_logits(model(batch), batch, reduction="sum") / batch.shape[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    schedule.step()
    if epoch % 10 == 9:
        print(json.dumps({"seed": seed, "epoch": epoch + 1, "valid": evaluate_nll(model, data.valid).nats}), flush=True)
result = {"seed": seed, "epochs": 100, "valid": evaluate_nll(model, data.valid).as_dict(),
          "test": evaluate_nll(model, data.test).as_dict(), "minutes": (time.perf_counter() - started) / 60}  # fmt: skip
print(json.dumps(result), flush=True)
