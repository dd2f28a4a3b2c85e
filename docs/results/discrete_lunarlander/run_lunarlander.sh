#!/bin/bash
# Discrete LunarLander DT (issue 28, done-when 2). Run from any directory.
set -e
export PYTHONPATH=/work/wt-discrete-models/src MINARI_DATASETS_PATH=/work/datasets SEQRL_ZOO=/work/shared/zoo
D=seqrl/lunarlander-discrete-medium-expert-v0
for M in tokenized continuous; do
  python -m seqrl.cli train --dataset $D --model $M --embed-dim 64 --n-layers 2 --n-heads 1 --context-len 10 \
    --batch-size 32 --steps 3000 --learning-rate 1e-3 --warmup-steps 100 --log-every 100 --checkpoint-every 1000 \
    --seed 0 --no-progress --run-dir /work/runs-discrete/ll-$M-s0
  python -m seqrl.cli eval /work/runs-discrete/ll-$M-s0 --episodes 50
done
