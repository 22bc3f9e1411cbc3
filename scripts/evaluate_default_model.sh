#!/usr/bin/env bash
# Scores of the shipped default model beside OpenCV's CSRT (on the RGB and on the thermal
# stream), as reported in docs/model-card-compact_rgbt.md:
#   - synthetic RGB-T sequences from seeds never used in training (1000-1009, held-out images),
#   - sequences composed from held-out real imagery (seeds 1000-1007; when `rgbt-track data
#     fetch data/real` has been run),
#   - the real single-modality sequences in ../shared/data (when present), each fed to both
#     inputs.
# Each sequence runs from its first frame (the tables) and from STARTS - 1 later ones, scored
# after them over all runs (`--starts`, docs/evaluation.md; STARTS=1 for the first frame only).
# Usage: scripts/evaluate_default_model.sh [OUT]   (default out/eval; results are resumable)
set -euo pipefail
OUT=${1:-out/eval}
SHARED=${SHARED:-../shared/data}
TRACKERS=(compact_rgbt csrt-rgb csrt-thermal)
STARTS=${STARTS:-3}

# score DATASET ROOT NAME: every tracker on ROOT's sequences, then the tables and plots, then
# the scores over the runs from every start.
score() {
  local dataset=$1 root=$2 name=$3 tracker
  for tracker in "${TRACKERS[@]}"; do
    rgbt-track run --model "$tracker" --dataset "$dataset" --root "$root" --starts "$STARTS" \
      --out "$OUT/${name}_results/$tracker"
  done
  rgbt-track evaluate --per-sequence --dataset "$dataset" --root "$root" --plot "$OUT/${name}_plots" \
    "${TRACKERS[@]/#/$OUT/${name}_results/}"
  if [ "$STARTS" != 1 ]; then
    echo "from $STARTS starts per sequence:"
    rgbt-track evaluate --per-sequence --starts "$STARTS" --dataset "$dataset" --root "$root" \
      "${TRACKERS[@]/#/$OUT/${name}_results/}"
  fi
}

rgbt-track synth "$OUT/synth" --seeds 1000-1009 --frames 150
score lasher "$OUT/synth" synth

REAL=${REAL:-data/real}
if [ -f "$REAL/manifest.json" ]; then
  rgbt-track data build "$REAL" "$OUT/real_heldout" --seeds 1000-1007 --frames 96 --kind objects
  score lasher "$OUT/real_heldout" real
else
  echo "$REAL has no fetched imagery (rgbt-track data fetch $REAL): skipping the real-imagery sequences"
fi

if [ -d "$SHARED" ]; then
  score otb "$SHARED" shared
else
  echo "$SHARED is absent: skipping the real sequences"
fi
