#!/usr/bin/env bash
# `superb bench` ÷ the same work typed as separate commands (extract per corpus, sweep per task and ER fold,
# report), on the tiny espeak-ng corpora of superb.testing.every_task, fbank, 4 steps a task; both tables printed.
#   bash benchmarks/bench_vs_commands.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
W=${1:-/tmp/superb-bench-vs}
C=$W/corpora
$PY -m superb.testing.every_task "$W" --tasks ks,ic,er,sd --steps 1 > /dev/null  # their tiny corpora, built once
rm -rf "$W/bench" "$W/sep"
S="config.runner.total_steps=4,,config.runner.eval_step=4,,config.runner.save_step=4,,config.runner.log_step=4"
start=$(date +%s.%N)
$PY -m superb bench -u fbank --data-root "$C" -p "$W/bench" --tasks ks,ic,er,sd --max-steps 4 > /dev/null 2>&1
mid=$(date +%s.%N)
$PY -m superb extract -u fbank --corpus speech_commands --root "$C/speech_commands/speech_commands_v0.01" \
  --out "$W/sep/stores/fbank" -q
for corpus in fluent_commands iemocap diarization; do
  $PY -m superb extract -u fbank --corpus $corpus --root "$C/$corpus" --out "$W/sep/stores/fbank" -q
done
sweep() { $PY -m superb sweep --features "$W/sep/stores/fbank" -o "$S" "$@" > /dev/null 2>&1; }
for t in ks ic sd; do sweep -d $t -p "$W/sep/runs/$t"; done
for f in 1 2 3 4 5; do sweep -d er --fold $f -p "$W/sep/runs/er_fold$f"; done
$PY -m superb report "$W/sep/runs" --out "$W/sep/report" > /dev/null
end=$(date +%s.%N)
python3 -c "b, s = $mid - $start, $end - $mid
print(f'superb bench: {b:.1f} s; the 13 separate commands: {s:.1f} s; ratio {b / s:.2f}')"
grep -A2 "^| upstream |" "$W/bench/report.md"
grep -A2 "^| upstream |" "$W/sep/report/report.md"
