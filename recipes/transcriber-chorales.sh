#!/usr/bin/env bash
# waveloom/assets/transcriber-chorales.safetensors, as shipped on 2026-12-06 (docs/transcriber.md): stages 1-7.
#
# Stage 1 (session 9): 4291 steps on the chorales rendered by TimGM6mb in four ensembles,
#   ~70 min of one shared CPU thread; plain BCE for 1300 steps, then model.pos_weight 5.
# Stage 2 (session 10): 6000 more steps (from stage 1's weights) on the same chorales rendered
#   by TimGM6mb *and* the OPL-3 FM SoundFont (34.4 h), ~75 min of one shared CPU thread.
# FluidR3 (fluid-soundfont-gm) is never rendered here: it is the held-out SoundFont.
# Run from the repository root with the venv active (make venv). Needs Debian's opl3-soundfont
# and csound-soundfont (the Makefile's soundfonts target installs both).
set -euo pipefail
TIMGM=/usr/share/sounds/sf2/TimGM6mb.sf2
OPL3=/usr/share/sounds/sf2/OPL-3_FM_128M.sf2
waveloom data render-midi data/chorales-timgm-every --chorales 371 --program every --soundfont "$TIMGM"
waveloom prepare data/chorales-timgm-every cache/chorales-timgm-every --format maestro
# Stage 1 as it was run: the preset's 6000-step cosine schedule, stopped by hand (Ctrl-C) at
# step 1300 with model.pos_weight=1, resumed with 5 and stopped at 4291 for lack of time;
# `timeout -s INT` stands in for the hand (the step reached then depends on the machine).
timeout -s INT 20m waveloom train configs/transcriber/small.yaml --data cache/chorales-timgm-every \
    --out runs/transcriber model.pos_weight=1 --threads 1 || true
waveloom train configs/transcriber/small.yaml --data cache/chorales-timgm-every \
    --out runs/transcriber --resume --override model.pos_weight=5 --threads 1
waveloom data render-midi data/chorales-2font-every --chorales 371 --program every \
    --soundfont "$TIMGM" --soundfont "$OPL3"
waveloom prepare data/chorales-2font-every cache/chorales-2font-every --format maestro
waveloom train configs/transcriber/small.yaml --data cache/chorales-2font-every \
    --out runs/transcriber-2font train.init_from=runs/transcriber/model.safetensors \
    train.warmup_steps=100 train.max_steps=6000 --threads 1
# Stage 3 (session 11): 5000 more steps on the chorales rendered by three SoundFonts (51.6 h):
# TimGM6mb, OPL-3 FM and Debian's csound-soundfont (sf_GMbank.sf2), ~69 min of one thread.
CSOUND=/usr/share/sounds/sf2/sf_GMbank.sf2
waveloom data render-midi data/chorales-3font-every --chorales 371 --program every \
    --soundfont "$TIMGM" --soundfont "$OPL3" --soundfont "$CSOUND"
waveloom prepare data/chorales-3font-every cache/chorales-3font-every --format maestro
waveloom train configs/transcriber/small.yaml --data cache/chorales-3font-every \
    --out runs/transcriber-3font train.init_from=runs/transcriber-2font/model.safetensors \
    train.warmup_steps=100 train.max_steps=5000 --threads 1
# Stage 4 (session 14): 4500 more steps on the same three-font renders with the timbre
# augmentations that target the held-out choir (docs/transcriber.md): random formants on half
# of the windows, a chorus on a quarter.
waveloom train configs/transcriber/small.yaml --data cache/chorales-3font-every \
    --out runs/transcriber-formants train.init_from=runs/transcriber-3font/model.safetensors \
    train.warmup_steps=100 train.max_steps=4500 data.formants=0.5 data.chorus=0.25 --threads 1
# Stage 5 (session 14, shipped): 4000 more steps the same way.
waveloom train configs/transcriber/small.yaml --data cache/chorales-3font-every \
    --out runs/transcriber-formants2 train.init_from=runs/transcriber-formants/model.safetensors \
    train.warmup_steps=100 train.max_steps=4000 train.seed=1 data.formants=0.5 data.chorus=0.25 --threads 1
# Stage 6 (session 19): 4000 more steps from stage 5's weights with the onsets that start under
# held notes weighted x 4 (model.held_onset_weight; docs/transcriber.md), 3037 s of one thread.
waveloom train configs/transcriber/small.yaml --data cache/chorales-3font-every \
    --out runs/transcriber-held4 train.init_from=runs/transcriber-formants2/model.safetensors \
    train.warmup_steps=100 train.max_steps=4000 data.formants=0.5 data.chorus=0.25 \
    model.pos_weight=5 model.held_onset_weight=4 --threads 1
# Stage 7 (session 20, shipped): 6000 more steps at lr 4e-4 with the weight x 2, 6086 s of one
# shared thread.
waveloom train configs/transcriber/small.yaml --data cache/chorales-3font-every \
    --out runs/transcriber-held2-long train.init_from=runs/transcriber-held4/model.safetensors \
    train.warmup_steps=100 train.max_steps=6000 train.lr=0.0004 data.formants=0.5 \
    data.chorus=0.25 model.pos_weight=5 model.held_onset_weight=2 --threads 1
