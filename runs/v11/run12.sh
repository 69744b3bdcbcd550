#!/usr/bin/env bash
# detector v12 candidate (runs/rule-detector-v12.md): v7 + 6 epochs on 1,500 ordinary + 1,500 far scenes
set -euo pipefail
cd /work/main

ls -d $PWD/data/detect91/images/train/*.jpg | sort > data/v12/all91.txt; head -n 1500 data/v12/all91.txt > data/v12/train.txt
ls -d $PWD/data/detect95/images/train/*.jpg | sort >> data/v12/train.txt
wc -l data/v12/train.txt
printf 'path: %s\ntrain: %s\nval: %s\nnames:\n  0: plate\n' "$PWD/data" "$PWD/data/v12/train.txt" "$PWD/data/detect95/images/val" > data/v12/data.yaml
date -u +"train start %H:%M:%S"
OMP_NUM_THREADS=2 .venv-yolo/bin/thaiplate train detector --data data/v12/data.yaml \
  --init models/detector.pt --imgsz 416 --epochs 6 --batch 16 --threads 2 --seed 10 --scale 0.7 \
  --close-mosaic 1 --lr0 0.0003 --warmup-epochs 0.5 --out runs/detector-v12 --no-export
date -u +"train end %H:%M:%S"
