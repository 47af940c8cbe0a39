#!/usr/bin/env bash
# The Fashion-MNIST text-to-image pipeline, end to end on a CPU: a KL autoencoder (dmd autoencoder), a
# latent text-to-image teacher of the SD family on captions made from the class names with its text
# encoder trained alongside (dmd teacher --mode sd --train-text-encoder), the teacher's evaluation with
# DDIM and guidance on held-out and on training phrasings, two distillations of it run side by side with
# one thread each (dmd-train: distribution matching alone, and DMD's distribution matching + regression
# on teacher pairs), and each one-step generator's evaluation on the same phrasings. Every step writes
# into $OUT; a step whose output exists is skipped, so the script can be re-run after an interruption.
# Results and timings: experiments/fmnist-t2i/README.md.
#
#   bash scripts/experiments/fmnist-t2i.sh                       # OUT=runs/fmnist-t2i
#   TEACHER_KIMG=200 DMD_STEPS=1200 bash scripts/experiments/fmnist-t2i.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/fmnist-t2i}
AE_KIMG=${AE_KIMG:-40}
TEACHER_KIMG=${TEACHER_KIMG:-100}
DMD_STEPS=${DMD_STEPS:-800}
GUIDANCE=${GUIDANCE:-3}
NUM=${NUM:-1000}
CAPTIONS=assets/fmnist-captions.jsonl
HELDOUT=assets/fmnist-prompts-heldout.jsonl
dmd() { node dist/cli/dmd.js "$@"; }
stamp() { date -u +%H:%M:%S; }
mkdir -p "$OUT"
if [ ! -f "$OUT/ae/autoencoder.safetensors" ]; then
  echo "[$(stamp)] autoencoder ($AE_KIMG kimg)"
  dmd autoencoder --out "$OUT/ae" --data fashion-mnist --kimg "$AE_KIMG" --sample-every 100000
fi
if [ ! -f "$OUT/teacher/teacher.safetensors" ]; then
  echo "[$(stamp)] teacher ($TEACHER_KIMG kimg)"
  dmd teacher --mode sd --vae "$OUT/ae/autoencoder.safetensors" --captions "$CAPTIONS" --train-text-encoder --data fashion-mnist \
    --out "$OUT/teacher" --kimg "$TEACHER_KIMG" --batch-size 64 --lr 5e-4 --sample-every 100000
fi
evaluate() { # name, model flag, model file, extra flags...
  local name=$1 flag=$2 file=$3; shift 3
  for set in heldout train; do
    local prompts=$HELDOUT; [ "$set" = train ] && prompts=$CAPTIONS
    if [ ! -f "$OUT/$name-eval-$set.json" ]; then
      echo "[$(stamp)] $name evaluation ($set phrasings)"
      dmd eval "$flag" "$file" --prompts "$prompts" "$@" --num "$NUM" --ref fashion-mnist:test --ref-num 5000 --out "$OUT/$name-eval-$set.json"
    fi
  done
}
evaluate teacher --teacher "$OUT/teacher/teacher.safetensors" --steps 25 --guidance "$GUIDANCE"
distil() { # name, extra flags...
  local name=$1; shift
  if [ ! -f "$OUT/$name/generator.safetensors" ]; then
    echo "[$(stamp)] distillation $name ($DMD_STEPS iterations, one thread)"
    DMD_NUM_THREADS=1 OMP_NUM_THREADS=1 node dist/cli/dmd-train.js --teacher "$OUT/teacher/teacher.safetensors" --prompts "$CAPTIONS" --real-guidance "$GUIDANCE" \
      --steps "$DMD_STEPS" --fake-updates-per-gen 1 --gen-lr 1e-4 --fake-lr 1e-4 --batch-size 32 --ema-decay 0.99 --final-eval 0 --sample-every 200 \
      --out "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1
    echo "[$(stamp)] distillation $name done"
  fi
}
distil dm &
distil dmd --pairs auto &
wait
evaluate dm --generator "$OUT/dm/generator.safetensors"
evaluate dmd --generator "$OUT/dmd/generator.safetensors"
echo "[$(stamp)] done: $OUT"
