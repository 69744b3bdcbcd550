#!/usr/bin/env bash
# detector v11 candidate: judge set first, then training (runs/rule-detector-v11.md)
set -euo pipefail
cd /work/main
date -u +"gen start %H:%M:%S"
.venv/bin/thaiplate synth detect --n 1500 --seed 2093 --val-fraction 1.0 --workers 2 --out data/detect93 > runs/v11/gen93.log 2>&1
date -u +"train start %H:%M:%S"
OMP_NUM_THREADS=2 .venv-yolo/bin/thaiplate train detector --data data/detect91/data.yaml \
  --init models/detector.pt --imgsz 416 --epochs 6 --batch 16 --threads 2 --seed 10 --scale 0.7 \
  --close-mosaic 1 --lr0 0.001 --warmup-epochs 0.5 --out runs/detector-v11 --no-export
date -u +"train end %H:%M:%S"
