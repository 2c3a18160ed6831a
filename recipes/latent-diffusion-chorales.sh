#!/usr/bin/env bash
# Latent diffusion of chorale renders (docs/latent_diffusion.md, session 25): a spectral
# autoencoder of the renders (configs/spectral_ae/chorales.yaml: a 64-dim code at 15.6 frames a
# second, Griffin-Lim phase), then a DiT over its code (configs/latent_diffusion/chorales.yaml:
# 30-s windows, the ensemble as the label, timing conditioning). Data: the 371 Bach chorales of
# music21 rendered by TimGM6mb once per ensemble (strings, winds, brass, keyboard; 1,484
# renders). Then quality and speed against steps (scripts/latent_diffusion_sweep.sh).
# Run from the repository root with the venv active (make venv).
set -euo pipefail
MINUTES=${MINUTES:-45}
test -f cache/chorales-timgm-4ens/cache.json || {
  waveloom data render-midi data/chorales-timgm-4ens --chorales 371 \
      --program strings,winds,brass,keyboard
  waveloom prepare data/chorales-timgm-4ens cache/chorales-timgm-4ens --format maestro; }
waveloom train configs/spectral_ae/chorales.yaml --data cache/chorales-timgm-4ens \
    --out runs/spectral-ae-chorales
waveloom train configs/latent_diffusion/chorales.yaml --data cache/chorales-timgm-4ens \
    --out runs/ld-chorales --minutes "$MINUTES" \
    model.autoencoder=runs/spectral-ae-chorales/model.safetensors
bash scripts/latent_diffusion_sweep.sh runs/ld-chorales/model.safetensors out/ld-sweep
