#!/usr/bin/env bash
# Universal music translation on two CPU cores (docs/translator.md, session 26): the soprano
# lines of music21's 371 Bach chorales rendered by TimGM6mb once per ensemble (strings: violin,
# winds: flute, brass: trumpet, keyboard: piano; 1,484 renders, the domains), the CPU
# translator trained on them (configs/translator/cpu.yaml), then the held-out inputs: the
# test chorales' soprano lines played by FluidR3 (a SoundFont it never heard) as a clarinet
# (an instrument it never heard), and a classifier of the four domains for target identity.
# Run from the repository root with the venv active (make venv).
set -euo pipefail
MINUTES=${MINUTES:-90}
FLUID=/usr/share/sounds/sf2/FluidR3_GM.sf2
test -f cache/domains-soprano/cache.json || {
  waveloom data render-midi data/domains-soprano --chorales 371 --voice soprano \
      --program strings,winds,brass,keyboard
  waveloom prepare data/domains-soprano cache/domains-soprano --format maestro; }
waveloom train configs/translator/cpu.yaml --data cache/domains-soprano \
    --out runs/translator-chorales --minutes "$MINUTES"
# The held-out pieces: the test split's soprano lines, as MIDI, rendered by an unseen font.
python scripts/split_midi.py data/domains-soprano --split test --ensemble strings \
    --out data/xlate-test-midi
waveloom data render-midi data/xlate-clarinet-fluid --midi data/xlate-test-midi --chorales 0 \
    --program 71 --soundfont "$FLUID"
