#!/usr/bin/env bash
# The Fashion-MNIST text-to-image pipeline, end to end on a CPU: a KL autoencoder (dmd autoencoder), a
# latent text-to-image teacher of the SD family on captions made from the class names (dmd teacher --mode
# sd), its evaluation with DDIM and guidance on held-out phrasings, a DMD distillation of it (dmd-train) and
# the one-step generator's evaluation on the same held-out phrasings. Every step writes into $OUT; a step
# whose output exists is skipped, so the script can be re-run after an interruption.
#
# Status: a first run (experiments/fmnist-t2i/README.md) with OpenBLAS: autoencoder 7.2 min, teacher (100 kimg)
# 14.9 min, distillation (400 iterations) 5.8 min. With Debian's reference BLAS the teacher's steps are ~4x slower.
#
#   bash scripts/experiments/fmnist-t2i.sh                 # OUT=runs/fmnist-t2i
#   AE_KIMG=60 TEACHER_KIMG=300 DMD_STEPS=600 bash scripts/experiments/fmnist-t2i.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/fmnist-t2i}
AE_KIMG=${AE_KIMG:-60}
TEACHER_KIMG=${TEACHER_KIMG:-300}
DMD_STEPS=${DMD_STEPS:-600}
GUIDANCE=${GUIDANCE:-3}
NUM=${NUM:-2000}
dmd() { node dist/cli/dmd.js "$@"; }
stamp() { date -u +%H:%M:%S; }
mkdir -p "$OUT"
if [ ! -f "$OUT/ae/autoencoder.safetensors" ]; then
  echo "[$(stamp)] autoencoder ($AE_KIMG kimg)"
  dmd autoencoder --out "$OUT/ae" --data fashion-mnist --kimg "$AE_KIMG" --sample-every 100000
fi
if [ ! -f "$OUT/teacher/teacher.safetensors" ]; then
  echo "[$(stamp)] teacher ($TEACHER_KIMG kimg)"
  dmd teacher --mode sd --vae "$OUT/ae/autoencoder.safetensors" --captions assets/fmnist-captions.jsonl --data fashion-mnist \
    --out "$OUT/teacher" --kimg "$TEACHER_KIMG" --batch-size 64 --lr 5e-4 --sample-every 100000
fi
if [ ! -f "$OUT/teacher-eval.json" ]; then
  echo "[$(stamp)] teacher evaluation (DDIM 25, guidance $GUIDANCE, held-out phrasings)"
  dmd eval --teacher "$OUT/teacher/teacher.safetensors" --prompts assets/fmnist-prompts-heldout.jsonl --steps 25 --guidance "$GUIDANCE" \
    --num "$NUM" --ref fashion-mnist:test --ref-num 5000 --out "$OUT/teacher-eval.json"
fi
if [ ! -f "$OUT/teacher-eval-train.json" ]; then
  echo "[$(stamp)] teacher evaluation (DDIM 25, guidance $GUIDANCE, training phrasings)"
  dmd eval --teacher "$OUT/teacher/teacher.safetensors" --prompts assets/fmnist-captions.jsonl --steps 25 --guidance "$GUIDANCE" \
    --num "$NUM" --ref fashion-mnist:test --ref-num 5000 --out "$OUT/teacher-eval-train.json"
fi
if [ ! -f "$OUT/dmd/generator.safetensors" ]; then
  echo "[$(stamp)] distillation ($DMD_STEPS iterations)"
  node dist/cli/dmd-train.js --teacher "$OUT/teacher/teacher.safetensors" --prompts assets/fmnist-captions.jsonl --real-guidance "$GUIDANCE" \
    --steps "$DMD_STEPS" --fake-updates-per-gen 1 --gen-lr 1e-4 --fake-lr 1e-4 --batch-size 32 --ema-decay 0.99 --final-eval 0 --sample-every 100 --out "$OUT/dmd"
fi
if [ ! -f "$OUT/generator-eval.json" ]; then
  echo "[$(stamp)] generator evaluation (one step, held-out phrasings)"
  dmd eval --generator "$OUT/dmd/generator.safetensors" --prompts assets/fmnist-prompts-heldout.jsonl --num "$NUM" --ref fashion-mnist:test --ref-num 5000 --out "$OUT/generator-eval.json"
fi
if [ ! -f "$OUT/generator-eval-train.json" ]; then
  echo "[$(stamp)] generator evaluation (one step, training phrasings)"
  dmd eval --generator "$OUT/dmd/generator.safetensors" --prompts assets/fmnist-captions.jsonl --num "$NUM" --ref fashion-mnist:test --ref-num 5000 --out "$OUT/generator-eval-train.json"
fi
echo "[$(stamp)] done: $OUT"
