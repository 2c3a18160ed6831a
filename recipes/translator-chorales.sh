#!/usr/bin/env bash
# Universal music translation on two CPU cores (docs/translator.md, session 26): the soprano
# lines of music21's 371 Bach chorales rendered by TimGM6mb once per ensemble (strings: violin,
# winds: flute, brass: trumpet, keyboard: piano; 1,484 renders, the domains), the CPU
# translator trained on them (configs/translator/cpu.yaml), then the held-out inputs: test
# chorales' soprano lines played by FluidR3 (a SoundFont it never heard) as a clarinet (an
# instrument it never heard), translated into each domain beside the shipped DDSP instruments,
# judged note by note (crepe-full, strict) and by an evaluation classifier of six families.
# Run from the repository root with the venv active (make venv; make soundfonts for FluidR3).
set -euo pipefail
MINUTES=${MINUTES:-95}
SECONDS_=${SECONDS_:-20}
RUN=${RUN:-runs/translator-chorales}
# CONFIG=configs/translator/cpu-f0.yaml RUN=runs/translator-f0: decoders with an f0 source
CONFIG=${CONFIG:-configs/translator/cpu.yaml}
FIGURE=${FIGURE:-docs/img/translator-s26.png}
TABLE=${TABLE:-out/xlate-table}
FLUID=/usr/share/sounds/sf2/FluidR3_GM.sf2
test -f cache/domains-soprano/cache.json || {
  waveloom data render-midi data/domains-soprano --chorales 371 --voice soprano \
      --program strings,winds,brass,keyboard
  waveloom prepare data/domains-soprano cache/domains-soprano --format maestro; }
test -f "$RUN/model.safetensors" || waveloom train "$CONFIG" \
    --data cache/domains-soprano --out "$RUN" --minutes "$MINUTES" --threads 2
# The held-out pieces: the test split's soprano lines, as MIDI, rendered by an unseen font and
# (the targets of the spectral distance) by each domain's own TimGM6mb instrument.
python scripts/split_midi.py data/domains-soprano --split test --ensemble strings \
    --out data/xlate-test-midi
waveloom data render-midi data/xlate-clarinet-fluid --midi data/xlate-test-midi --chorales 0 \
    --program 71 --soundfont "$FLUID"
for p in 40 73 56 0; do
  waveloom data render-midi "data/xlate-target-$p" --midi data/xlate-test-midi --chorales 0 \
      --program "$p"; done
# Six pieces no translator and no DDSP model trained on (DDSP: the first 30 chorales; one
# copy of bwv194.12, which music21 holds twice).
mkdir -p data/xlate-pieces6
for piece in bwv127.5 bwv133.6 bwv176.6 bwv194.12 bwv227.11 bwv248.9-1; do
  cp "data/xlate-test-midi/bach-$piece-soprano.mid" data/xlate-pieces6/; done
test -f cache/demo-notes-v5/cache.json || {
  waveloom data render-notes data/demo-notes-v5 --programs 0,20,24,40,56,73 --pitches 45-79 \
      --velocities 60,75,90,105,127
  waveloom prepare data/demo-notes-v5 cache/demo-notes-v5; }
# The judge of "heard as the family": trained with half its crops cut short (--truncate 0.5),
# so a melody's notes (0.2-1 s, zero-padded) are heard as their instrument: on the renders
# of the held-out pieces 81-82 % of notes against 41-48 % without (3 seeds each, session 31,
# benchmarks/family_ceiling.py).
test -f out/classifier-notes-v5-short.safetensors || waveloom train-classifier \
    cache/demo-notes-v5 --out out/classifier-notes-v5-short.safetensors --truncate 0.5
T=data/xlate-target
args=()
for row in "strings 40 string" "winds 73 flute" "brass 56 brass" "keyboard 0 keyboard"; do
  set -- $row
  args+=(--model "translator $1=$RUN/model.safetensors#$1" --target "translator $1=$T-$2"
         --family "translator $1=$3"); done
for row in "violin 40 string" "flute 73 flute" "trumpet 56 brass"; do
  set -- $row
  args+=(--model "DDSP $1=waveloom/assets/ddsp-$1.safetensors" --target "DDSP $1=$T-$2"
         --family "DDSP $1=$3"); done
python benchmarks/transfer_table.py --inputs data/xlate-clarinet-fluid \
    --pieces data/xlate-pieces6 --seconds "$SECONDS_" --estimator crepe-full --hop 0.04 \
    --classifier out/classifier-notes-v5-short.safetensors --out "$TABLE" \
    --figure "$FIGURE" "${args[@]}"
# Shipped (session 31): CONFIG=configs/translator/cpu-f0-gauss.yaml RUN=runs/translator-gauss,
# 4,589 steps then `--resume` to the schedule's end (6,100), then
# python scripts/ship_checkpoint.py runs/translator-gauss/model.safetensors \
#     waveloom/assets/translator-soprano.safetensors --domains --temperature 0.5 --training "..."
# Session 32: the shipped translator into all four domains (what each note is heard as, three
# sampling seeds for strings with --seed 0/1/2), then what is in the sound: partials and
# harmonic-to-noise ratio of every note beside each domain's own rendering.
A=waveloom/assets/translator-soprano.safetensors
args=()
for row in "strings 40 string" "winds 73 flute" "brass 56 brass" "keyboard 0 keyboard"; do
  set -- $row
  args+=(--model "soprano $1=$A#$1" --target "soprano $1=$T-$2" --family "soprano $1=$3"); done
python benchmarks/transfer_table.py --inputs data/xlate-clarinet-fluid \
    --pieces data/xlate-pieces6 --seconds 20 --estimator crepe-full --hop 0.04 \
    --classifier out/classifier-notes-v5-short.safetensors --out out/s32-xlate-all-t05 \
    --threads 1 --temperature 0.5 --seed 0 --figure docs/img/translator-s32-domains.png "${args[@]}"
O=out/s32-xlate-all-t05/soprano
python benchmarks/harmonic_profile.py --pieces data/xlate-pieces6 --seconds 20 \
    --render "input (FluidR3 clarinet)=data/xlate-clarinet-fluid" \
    --render "strings/violin (TimGM6mb)=$T-40" --render "strings/translator strings=$O strings" \
    --render "winds/flute (TimGM6mb)=$T-73" --render "winds/translator winds=$O winds" \
    --render "brass/trumpet (TimGM6mb)=$T-56" --render "brass/translator brass=$O brass" \
    --render "keyboard/piano (TimGM6mb)=$T-0" --render "keyboard/translator keyboard=$O keyboard" \
    --out out/s32-harm --figure docs/img/translator-s32-harmonics.png
