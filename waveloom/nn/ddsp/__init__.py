"""DDSP signal processing (Engel et al. 2020): differentiable synthesisers driven by frame controls.

Conventions shared by every module here and by the ``ddsp`` model family built on them:

* Audio is ``[B, T]`` float in ``[-1, 1]``.
* Controls come at a frame rate (default 250 Hz); ``hop = sample_rate / frame_rate`` samples
  (64 at 16 kHz). ``F`` frames describe ``T = F * hop`` samples and frame ``i`` is centred at
  sample ``i * hop``.
* Frames -> samples (:func:`upsample_frames`): overlapping windows, as in DDSP. With
  ``method='window'`` every frame carries a Hann window of ``2 * hop`` samples centred on it,
  overlap-added, so each sample blends its two nearest frames (the windows sum to one);
  ``'linear'`` interpolates linearly between frame centres (used for f0, hence for phase).
  Samples after the last frame centre hold the last frame (as if frame ``F`` repeated frame
  ``F - 1``; offline the first frame is likewise held before frame 0), so the samples of frame
  ``i`` (``[i hop, (i+1) hop)``) blend frames ``i`` and ``i + 1`` only.
* Look-ahead (latency when streaming): one frame for the blend and the noise FIR; the harmonic
  anti-aliasing mask of frame ``i + 1`` also reads ``f0[i + 2]`` (see
  :mod:`waveloom.nn.ddsp.harmonic`), so the streaming synthesiser runs two frames (8 ms at
  250 Hz) behind its input, see :mod:`waveloom.nn.ddsp.stream`.
* Phase is in radians and continues across calls through ``phase0`` / the returned phase.
* Loudness (:mod:`waveloom.audio.loudness`) and f0 (:mod:`waveloom.audio.f0`) features are
  computed at the same frame rate, frame ``i`` at time ``i / frame_rate``.
"""

from waveloom.nn.ddsp.harmonic import harmonic_synth
from waveloom.nn.ddsp.noise import filtered_noise
from waveloom.nn.ddsp.reverb import Reverb
from waveloom.nn.ddsp.upsample import upsample_frames

__all__ = ["Reverb", "filtered_noise", "harmonic_synth", "upsample_frames"]
