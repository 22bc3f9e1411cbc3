#!/usr/bin/env bash
# Scores of the shipped default model beside OpenCV's CSRT (on the RGB and on the thermal
# stream), as reported in docs/model-card-compact_rgbt.md:
#   - synthetic RGB-T sequences from seeds never used in training (1000-1009, held-out images),
#   - the real single-modality sequences in ../shared/data (when present), each fed to both
#     inputs.
# Usage: scripts/evaluate_default_model.sh [OUT]   (default out/eval; results are resumable)
set -euo pipefail
OUT=${1:-out/eval}
SHARED=${SHARED:-../shared/data}
TRACKERS=(compact_rgbt csrt-rgb csrt-thermal)

rgbt-track synth "$OUT/synth" --seeds 1000-1009 --frames 150
for tracker in "${TRACKERS[@]}"; do
  rgbt-track run --model "$tracker" --dataset lasher --root "$OUT/synth" --out "$OUT/synth_results/$tracker"
done
rgbt-track evaluate --per-sequence --dataset lasher --root "$OUT/synth" --plot "$OUT/synth_plots" \
  "${TRACKERS[@]/#/$OUT/synth_results/}"

if [ -d "$SHARED" ]; then
  for tracker in "${TRACKERS[@]}"; do
    rgbt-track run --model "$tracker" --dataset otb --root "$SHARED" --out "$OUT/shared_results/$tracker"
  done
  rgbt-track evaluate --per-sequence --dataset otb --root "$SHARED" --plot "$OUT/shared_plots" \
    "${TRACKERS[@]/#/$OUT/shared_results/}"
else
  echo "$SHARED is absent: skipping the real sequences"
fi
