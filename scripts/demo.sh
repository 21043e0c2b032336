#!/usr/bin/env bash
# `make demo`: the whole pipeline on the embedded defaults (SmolLM2-135M-Instruct on CPU),
# from a fresh machine: set-up, seeds, data, train, HumanEval before/after, a summary.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=${RUN:-runs/demo}
CONFIG=${CONFIG:-configs/demo.toml}
EVAL_LIMIT=${EVAL_LIMIT:-20}
ARENA_LIMIT=${ARENA_LIMIT:-6}
SA=.venv/bin/selfalign
start=$(date +%s)
stamp() { echo "[demo $(($(date +%s) - start))s] $*"; }

stamp "set-up"
make --no-print-directory setup

stamp "seeds from the standard library"
$SA seeds --run "$RUN" --config "$CONFIG"

stamp "data: concepts -> tasks -> responses -> execution -> selection -> pairs -> export"
$SA generate --run "$RUN" --config "$CONFIG"

stamp "training: SFT of the embedded model on the data set"
$SA train sft --data "$RUN/dataset" --out "$RUN/model" --config "$CONFIG"

stamp "HumanEval (first $EVAL_LIMIT problems), base model then tuned model"
$SA eval humaneval --model embedded --limit "$EVAL_LIMIT" --out "$RUN/eval/base" --config "$CONFIG"
$SA eval humaneval --model "$RUN/model" --mode chat --limit "$EVAL_LIMIT" --out "$RUN/eval/tuned" --config "$CONFIG"

stamp "arena (first $ARENA_LIMIT questions): tuned model against the base, judged by the base"
$SA eval arena --config "$CONFIG" --model "$RUN/model" --model-mode chat --baseline embedded \
  --judge embedded --limit "$ARENA_LIMIT" --out "$RUN/eval/arena"

stamp "summary"
$SA status --run "$RUN"
$SA eval compare "$RUN/eval/base" "$RUN/eval/tuned" "$RUN/eval/arena"
echo
echo "data set:        $RUN/dataset  (card: $RUN/dataset/README.md)"
echo "tuned model:     $RUN/model"
echo "evaluation:      $RUN/eval/base, $RUN/eval/tuned (HumanEval), $RUN/eval/arena"
stamp "done in $(($(date +%s) - start)) s"
