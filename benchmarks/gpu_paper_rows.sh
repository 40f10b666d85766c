#!/usr/bin/env bash
# The paper profile's rows on a GPU machine reached one command at a time (torch there, no papermill).
# The first call starts `replication.plain_engine` detached (setsid), so that a following call on the same warm machine
# waits on the same run; every call waits up to WAIT seconds, prints where the run stands, and copies the archive
# of results and logs (no checkpoints) to $OUT once the run has finished.
# Usage, from the repository root there: bash benchmarks/gpu_paper_rows.sh WAIT [EXPERIMENTS]
# The data: MADE_DATA_DIR, or .devdata/ of the carried working tree (binarized_mnist.npz copied there).
set -u
WAIT=${1:-480}
ONLY=${2:-paper_mnist_1x8000_32masks}
export MADE_DATA_DIR=${MADE_DATA_DIR:-$PWD/.devdata} PYTHONUNBUFFERED=1
WORK=/dev/shm/made
OUT=${OUT:-$WORK/out}
mkdir -p "$WORK" "$OUT"
if [ ! -f "$WORK/started" ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
  python3 -c "import torch; from replication.training.optimizers import fused_kernel_runs as f
print('torch', torch.__version__, torch.cuda.get_device_name(), '| fused official Adagrad on cuda:',
      f('adagrad_official', torch.device('cuda')))"
  cp -r results/paper "$WORK/results"
  date +%s >"$WORK/started"
  setsid nohup python3 -m replication.plain_engine --profile paper --results "$WORK/results" --runs "$WORK/runs" \
    --only "$ONLY" --parallel 1 --device cuda --archive "$WORK/paper.tar.gz" >"$WORK/direct.log" 2>&1 </dev/null &
fi
end=$(($(date +%s) + WAIT))
while [ "$(date +%s)" -lt "$end" ] && [ ! -f "$WORK/paper.tar.gz" ] && pgrep -f replication.plain_engine >/dev/null; do
  sleep 5
done
echo "--- $(($(date +%s) - $(cat "$WORK/started"))) s since the start"
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
for ck in "$WORK"/runs/paper/*/checkpoint.pt; do
  [ -f "$ck" ] && python3 -c "import sys, torch; s = torch.load(sys.argv[1], map_location='cpu', weights_only=False)
h = s['history'][-1]; print(sys.argv[1].split('/')[-2], 'epoch', s['epoch'], 'train', round(h['train_nll'], 3),
      'valid', round(h['valid_nll'], 3), 'best', round(s['best']['valid_nll'], 3), 'at', s['best']['epoch'],
      'seconds', round(s['seconds'], 1))" "$ck"
done
tail -n 25 "$WORK/direct.log" "$WORK"/runs/logs/*.log 2>/dev/null
tar czf "$OUT/logs.tar.gz" -C "$WORK" direct.log runs/logs 2>/dev/null
[ -f "$WORK/paper.tar.gz" ] && cp "$WORK/paper.tar.gz" "$OUT/" && echo "archive copied: $(du -h "$OUT/paper.tar.gz")"
exit 0
