#!/usr/bin/env bash
# The shipped note codec and its token LM (issue 24; docs/codec.md, docs/codec_lm.md):
# 1. the codec on the built-in notes (cache/demo-notes-v5: six TimGM6mb programs, MIDI 45-79,
#    five velocities; 837 training notes), reconstruction losses only, euclidean 8-d codes:
#    14,500 steps, 4070 s of one shared CPU thread (session 28);
# 2. the LM's data (session 29): the same six programs x MIDI 45-79 x ten velocities rendered
#    by three SoundFonts (TimGM6mb, OPL-3 FM, csound sf_GMbank; FluidR3 stays held out), merged
#    with an instrument label per font (18), every note encoded with codec-notes-v2's first 4
#    codebooks (2 kbps);
# 3. configs/codec_lm/cpu.yaml with the labels on every step, 6,000 steps (best validation
#    weights kept, step 6,000; 3,852 s of one shared CPU thread, session 32);
# 4. the card's figures: the codec beside Opus on held-out FluidR3 notes, the strict CREPE grid.
# Run from the repository root with the venv active (make venv).
set -euo pipefail
test -f cache/demo-notes-v5/cache.json || {
  waveloom data render-notes data/demo-notes-v5 --programs 0,20,24,40,56,73 --pitches 45-79 \
      --velocities 60,75,90,105,127
  waveloom prepare data/demo-notes-v5 cache/demo-notes-v5; }
waveloom train configs/codec/cpu.yaml --data cache/demo-notes-v5 --out runs/codec-notes-a \
    --threads 1 --max-steps 14500 model.codebook_dim=8 model.weight_adv=0 model.weight_feat=0 \
    model.adversarial_start=100000000 train.grad_clip=1
python scripts/ship_checkpoint.py runs/codec-notes-a/model.safetensors \
    waveloom/assets/codec-notes.safetensors --no-instruments \
    --training "configs/codec/cpu.yaml, reconstruction only, 14,500 steps. recipes/codec-lm-notes.sh"
# The same recipe with a projection per codebook (DAC's layout, docs/codec.md): shipped as
# codec-notes-v2 (session 31; 14,500 steps in ~3,300 s of one shared CPU thread). The LM
# below reads its codes (session 32).
waveloom train configs/codec/cpu.yaml --data cache/demo-notes-v5 --out runs/codec-notes-dac \
    --threads 1 --max-steps 14500 model.codebook_dim=8 model.per_codebook_projection=true \
    model.weight_adv=0 model.weight_feat=0 model.adversarial_start=100000000 train.grad_clip=1
python scripts/ship_checkpoint.py runs/codec-notes-dac/model.safetensors \
    waveloom/assets/codec-notes-v2.safetensors --no-instruments \
    --training "configs/codec/cpu.yaml with a projection per codebook (model.codebook_dim=8 model.per_codebook_projection=true), reconstruction only (model.weight_adv=0 model.weight_feat=0 model.adversarial_start=100000000 train.grad_clip=1), 14,500 steps of one CPU thread on cache/demo-notes-v5 (session 31). recipes/codec-lm-notes.sh"
SF=/usr/share/sounds/sf2
NOTES="--programs 0,20,24,40,56,73 --pitches 45-79"
# (the five new TimGM velocities come from Debian's TimGM6mb.sf2, another build of the font
# than pretty_midi's, which rendered the built-in notes)
test -f data/notes-timgm-v2/examples.json || waveloom data render-notes data/notes-timgm-v2 \
    $NOTES --velocities 55,68,82,97,115 --soundfont $SF/TimGM6mb.sf2
for font in opl3:OPL-3_FM_128M gmbank:sf_GMbank; do
  tag=${font%%:*}; file=$SF/${font#*:}.sf2
  test -f data/notes-$tag/examples.json || waveloom data render-notes data/notes-$tag $NOTES \
      --velocities 60,75,90,105,127 --soundfont "$file"
  test -f data/notes-$tag-v2/examples.json || waveloom data render-notes data/notes-$tag-v2 \
      $NOTES --velocities 55,68,82,97,115 --soundfont "$file"
done
python scripts/merge_notes.py data/notes-6x data/demo-notes-v5 data/notes-opl3:opl3 \
    data/notes-gmbank:gmbank data/notes-timgm-v2 data/notes-opl3-v2:opl3 data/notes-gmbank-v2:gmbank
waveloom prepare data/notes-6x cache/notes-6x
# (sessions 29-30 trained the LM on codec-notes' codes, 12,000 steps: 142/174 on the grid;
# session 32 on codec-notes-v2's, 6,000 steps: 151/174, shipped; docs/codec_lm.md)
waveloom encode-codes waveloom/assets/codec-notes-v2.safetensors --data cache/notes-6x \
    --out cache/notes-6x-codes-v2 --bandwidth 2
waveloom train configs/codec_lm/cpu.yaml --data cache/notes-6x-codes-v2 --out runs/codec-lm-v2 \
    --threads 1 model.cond_every_step=true model.num_instruments=18 train.max_steps=6000
python scripts/ship_checkpoint.py runs/codec-lm-v2/best.safetensors \
    waveloom/assets/codec-lm-notes.safetensors \
    --training "configs/codec_lm/cpu.yaml, labels on every step (model.cond_every_step=true model.num_instruments=18), on cache/notes-6x-codes-v2: the 6,300 notes of 3 SoundFonts encoded by codec-notes-v2 at 2 kbps (4 codebooks), 6,000 steps of one shared CPU thread (3,852 s, session 32), best validation step 6,000 (3.663 nats a code). recipes/codec-lm-notes.sh"
# The card's figures:
test -f cache/heldout-notes-fluid/cache.json || {
  waveloom data render-notes data/heldout-notes-fluid --programs 0,24,40,56,73 --pitches 48-72 \
      --velocities 100 --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2
  waveloom prepare data/heldout-notes-fluid cache/heldout-notes-fluid; }
python benchmarks/codec_eval.py waveloom/assets/codec-notes.safetensors cache/heldout-notes-fluid \
    --split all --clips 48 --seconds 2 --start 0 --bandwidths 1.5 2 3 6 --diagnose \
    --pitch crepe-full --record
python benchmarks/codec_eval.py waveloom/assets/codec-notes-v2.safetensors \
    cache/heldout-notes-fluid --split all --clips 48 --seconds 2 --start 0 \
    --bandwidths 1.5 2 3 6 --diagnose --pitch crepe-full --record
python benchmarks/pitch_grid.py waveloom/assets/codec-lm-notes.safetensors --out out/codec-lm-grid \
    --low 48 --high 76 --seconds 2 --seed 0 --cfg 3 --wavs --record --real data/demo-notes-v5 \
    --instruments synthetic
waveloom evaluate out/codec-lm-grid --metrics kid,kad --reference cache/demo-notes-v5 \
    --reference-split test -q
python benchmarks/codec_lm_speed.py waveloom/assets/codec-lm-notes.safetensors --seconds 10
