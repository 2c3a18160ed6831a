"""DDSP synthesis pieces against analytic references (issue #22)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from waveloom.errors import ConfigError
from waveloom.nn.ddsp import Reverb, filtered_noise, harmonic_synth, upsample_frames
from waveloom.nn.ddsp.noise import frame_filters

SR, HOP = 16000, 64


def _reference_upsample(x: np.ndarray, hop: int, method: str) -> np.ndarray:
    """Explicit overlap-add: frame i spreads a window of 2*hop samples centred on i*hop."""
    frames, channels = x.shape
    padded = np.concatenate([x, x[-1:]])  # the last frame holds
    out = np.zeros((frames * hop + hop, channels))
    d = np.arange(-hop, hop)
    if method == "window":
        win = 0.5 * (1 + np.cos(np.pi * d / hop))
    else:
        win = 1 - np.abs(d) / hop
    for i in range(frames + 1):
        for j, n in enumerate(i * hop + d):
            if 0 <= n < len(out):
                out[n] += padded[i] * win[j]
    return out[: frames * hop]


@pytest.mark.parametrize("method", ["window", "linear"])
def test_upsample_matches_explicit_overlap_add(method):
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    y = upsample_frames(x, 8, method)
    assert y.shape == (2, 56, 3)
    for b in range(2):
        ref = _reference_upsample(x[b].numpy(), 8, method)
        np.testing.assert_allclose(y[b].numpy(), ref, atol=1e-12)
    # constants stay constant (the windows sum to one) and frame centres are exact
    ones = upsample_frames(torch.ones(1, 5, 1), 8, method)
    torch.testing.assert_close(ones, torch.ones(1, 40, 1))
    torch.testing.assert_close(y[:, ::8], x)


def test_upsample_bad_input():
    with pytest.raises(ConfigError, match="method"):
        upsample_frames(torch.zeros(1, 2, 1), 4, "cubic")
    with pytest.raises(ConfigError, match=r"\[B, F, C\]"):
        upsample_frames(torch.zeros(2, 4), 4)


def _one_harmonic(f0: float, frames: int, k: int = 60, phase0=None, amp: float = 0.7):
    f = torch.full((1, frames), f0)
    a = torch.full((1, frames), amp)
    dist = torch.zeros(1, frames, k)
    dist[..., 0] = 1.0
    return harmonic_synth(f, a, dist, SR, HOP, phase0)


def test_constant_f0_single_harmonic_is_a_sine():
    frames = 1000  # 4 s: phase must stay exact over long notes
    audio, phase = _one_harmonic(440.0, frames)
    n = np.arange(frames * HOP)
    ref = 0.7 * np.sin(2 * np.pi * 440.0 * n / SR)
    assert np.abs(audio[0].numpy() - ref).max() < 1e-4
    end = (2 * np.pi * 440.0 * frames * HOP / SR) % (2 * np.pi)
    assert 0.0 <= float(phase[0]) < 2 * np.pi
    assert abs(np.angle(np.exp(1j * (float(phase[0]) - end)))) < 1e-9  # equal modulo 2 pi


def test_phase_is_cumulative_sum_of_linear_f0():
    f0 = torch.tensor([[200.0, 300.0, 250.0, 410.0, 410.0]], dtype=torch.float64)
    amp = torch.ones_like(f0)
    dist = torch.zeros(1, 5, 60, dtype=torch.float64)
    dist[..., 0] = 1
    audio, _ = harmonic_synth(f0, amp, dist, SR, HOP, torch.tensor([0.3]))
    f = upsample_frames(f0[..., None], HOP, "linear")[0, :, 0].numpy()
    phase = 0.3 + np.concatenate([[0.0], np.cumsum(2 * np.pi * f / SR)[:-1]])
    np.testing.assert_allclose(audio[0].numpy(), np.sin(phase), atol=1e-4)


def test_harmonic_mix_and_renormalisation():
    # f0 = 3 kHz at 16 kHz: harmonics 1 and 2 are below Nyquist (8 kHz), 3 and up are not.
    frames, k = 40, 80
    f = torch.full((1, frames), 3000.0)
    dist = torch.zeros(1, frames, k)
    dist[..., 0], dist[..., 1], dist[..., 2], dist[..., 50] = 1.0, 1.0, 5.0, 3.0
    audio, _ = harmonic_synth(f, torch.full((1, frames), 0.5), dist, SR, HOP)
    n = np.arange(frames * HOP)
    ref = 0.25 * np.sin(2 * np.pi * 3000 * n / SR) + 0.25 * np.sin(2 * np.pi * 6000 * n / SR)
    assert np.abs(audio[0].numpy() - ref).max() < 1e-4


def test_no_folded_partials_for_a_high_note():
    frames, k = 250, 100
    f0 = 1500.0  # harmonics 1..5 below 8 kHz; 6..100 would fold back everywhere
    f = torch.full((1, frames), f0)
    dist = torch.ones(1, frames, k)
    audio, _ = harmonic_synth(f, torch.full((1, frames), 0.5), dist, SR, HOP)
    x = audio[0].numpy() * np.hanning(frames * HOP)
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    partial = np.zeros_like(spec, dtype=bool)
    for h in range(1, 6):
        partial |= np.abs(freqs - h * f0) < 20
    ratio_db = 10 * np.log10(spec[~partial].max() / spec[partial].max())
    assert ratio_db < -80, ratio_db


def test_gliding_note_never_aliases():
    # f0 glides up an octave; partials crossing Nyquist must vanish, not fold down.
    frames = 200
    f = torch.linspace(1000.0, 2000.0, frames)[None]
    dist = torch.ones(1, frames, 100)
    audio, _ = harmonic_synth(f, torch.ones(1, frames) * 0.5, dist, SR, HOP)
    spec = np.abs(np.fft.rfft(audio[0].numpy() * np.hanning(frames * HOP)))
    freqs = np.fft.rfftfreq(frames * HOP, 1 / SR)
    # every partial present lies at or above 1 kHz (the lowest f0); folded ones would fill
    # the band below 900 Hz
    low = spec[freqs < 900].max() / spec.max()
    assert 20 * np.log10(low) < -60


def test_phase_continuity_across_calls():
    torch.manual_seed(0)
    frames, k = 30, 64
    f = torch.full((2, frames), 0.0) + torch.tensor([[330.0], [97.0]])
    a = torch.rand(2, frames)
    dist = torch.rand(2, frames, k)
    whole, end = harmonic_synth(f, a, dist, SR, HOP, torch.tensor([0.5, 1.0]))
    # the first part's look-ahead frame equals its last (f0 and controls are constant across
    # the split for the held frame), so chaining must match exactly
    a[:, 11] = a[:, 12]
    dist[:, 11] = dist[:, 12]
    whole, end = harmonic_synth(f, a, dist, SR, HOP, torch.tensor([0.5, 1.0]))
    first, mid = harmonic_synth(f[:, :12], a[:, :12], dist[:, :12], SR, HOP,
                                torch.tensor([0.5, 1.0]))
    second, end2 = harmonic_synth(f[:, 12:], a[:, 12:], dist[:, 12:], SR, HOP, mid)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, atol=1e-5, rtol=0)
    assert torch.allclose(end, end2, atol=1e-9)


def test_harmonic_gradients_flow():
    f = torch.full((1, 10), 220.0, requires_grad=True)
    a = torch.full((1, 10), 0.5, requires_grad=True)
    d = torch.rand(1, 10, 60, requires_grad=True)
    audio, _ = harmonic_synth(f, a, d, SR, HOP)
    audio.pow(2).sum().backward()
    assert all(torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0 for t in (f, a, d))


def test_harmonic_bad_shapes():
    with pytest.raises(ConfigError, match="distribution"):
        harmonic_synth(torch.ones(1, 4), torch.ones(1, 4), torch.ones(1, 5, 60), SR, HOP)


def test_noise_filters_are_linear_phase_and_match_bands():
    mags = torch.rand(1, 1, 65)
    taps = frame_filters(mags)[0, 0].numpy()
    assert taps.shape == (128,)
    np.testing.assert_allclose(taps[1:64], taps[65:][::-1], atol=1e-7)  # symmetric about 64
    # unwindowed, the filter would pass exactly the sampled magnitudes at the band centres
    plain = np.roll(np.fft.irfft(mags[0, 0].numpy(), 128), 64)
    np.testing.assert_allclose(np.abs(np.fft.rfft(plain)), mags[0, 0].numpy(), atol=1e-5)


def test_noise_matches_direct_time_varying_convolution():
    gen = torch.Generator().manual_seed(1)
    mags = torch.rand(2, 6, 65, generator=gen, dtype=torch.float64)
    noise = torch.rand(2, 6 * HOP, generator=gen, dtype=torch.float64) * 2 - 1
    out = filtered_noise(mags, HOP, noise)
    taps = frame_filters(mags).numpy()
    for b in range(2):
        full = np.zeros(6 * HOP + 127)
        for i in range(6):
            block = noise[b, i * HOP : (i + 1) * HOP].numpy()
            full[i * HOP : i * HOP + HOP + 127] += np.convolve(block, taps[b, i])
        np.testing.assert_allclose(out[b].numpy(), full[64 : 64 + 6 * HOP], atol=1e-10)


def test_noise_psd_follows_a_low_pass_mask():
    frames = 2000
    mags = torch.zeros(1, frames, 65)
    mags[..., :33] = 1.0  # pass 0..4 kHz
    out = filtered_noise(mags, HOP, generator=torch.Generator().manual_seed(0))[0].numpy()
    seg = out[: len(out) // 512 * 512].reshape(-1, 512) * np.hanning(512)
    psd = (np.abs(np.fft.rfft(seg, axis=1)) ** 2).mean(0)
    freqs = np.fft.rfftfreq(512, 1 / SR)
    passband = psd[(freqs > 500) & (freqs < 3000)].mean()
    stop = psd[freqs > 5000].max()
    assert 10 * np.log10(stop / passband) < -40
    # the pass band is flat within 1 dB
    pb = 10 * np.log10(psd[(freqs > 500) & (freqs < 3000)] / passband)
    assert np.abs(pb).max() < 1.0
    # white uniform noise has variance 1/3; a half-band pass keeps about half of it
    assert 0.12 < out.var() < 0.22


def test_noise_is_reproducible_with_a_generator():
    mags = torch.rand(1, 5, 65)
    a = filtered_noise(mags, HOP, generator=torch.Generator().manual_seed(3))
    b = filtered_noise(mags, HOP, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_reverb_matches_direct_convolution():
    rev = Reverb(SR, seconds=0.05).double()
    x = torch.randn(2, 3000, dtype=torch.float64)
    y = rev(x).detach().numpy()
    ir = rev.ir.detach().numpy()
    mix = float(rev.mix().detach())
    for b in range(2):
        ref = (1 - mix) * x[b].numpy() + mix * np.convolve(x[b].numpy(), ir)[:3000]
        np.testing.assert_allclose(y[b], ref, atol=1e-10)
    assert y.shape == (2, 3000)


def test_reverb_initial_ir_decays_and_learns():
    rev = Reverb(SR, seconds=1.0)
    ir = rev.ir.detach().abs().numpy()
    assert ir.shape == (SR,)
    assert ir[-1600:].max() < ir[:1600].max() / 100  # about -60 dB by the end
    assert torch.equal(Reverb(SR, 1.0).ir, rev.ir)  # seeded: the same model twice
    rev(torch.randn(1, 500)).sum().backward()
    assert rev.ir.grad is not None and rev.mix_logit.grad is not None
    with pytest.raises(ConfigError, match="seconds"):
        Reverb(SR, seconds=0.0)


def test_sine_sanity_math():
    assert math.isclose(SR / HOP, 250.0)


def test_spectral_loss_zero_on_equal_and_matches_reference():
    from waveloom.nn.ddsp.spectral_loss import multiscale_spectral_loss

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 4000, generator=gen, dtype=torch.float64) - 0.5
    y = torch.rand(2, 4000, generator=gen, dtype=torch.float64) - 0.5
    assert float(multiscale_spectral_loss(x, x)) == 0.0
    ref = 0.0
    for n in (2048, 1024, 512, 256, 128, 64):
        mags = []
        for z in (x, y):
            padded = np.pad(z.numpy(), ((0, 0), (n // 2, n // 2)), mode="reflect")
            idx = np.arange(0, padded.shape[1] - n + 1, n // 4)
            frames = np.stack([padded[:, i : i + n] for i in idx], -1)  # [B, n, F]
            win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
            spec = np.fft.rfft(frames * win[None, :, None], axis=1)
            mags.append(np.sqrt(np.maximum(np.abs(spec) ** 2, 1e-8)))
        ref += np.abs(mags[0] - mags[1]).mean() + np.abs(np.log(mags[0] / mags[1])).mean()
    assert abs(float(multiscale_spectral_loss(x, y)) - ref) < 1e-9 * ref


def test_spectral_loss_equals_auraloss_times_scales():
    auraloss = pytest.importorskip("auraloss")
    from waveloom.nn.ddsp.spectral_loss import FFT_SIZES, multiscale_spectral_loss

    x, y = torch.randn(2, 8000), torch.randn(2, 8000)
    theirs = auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=list(FFT_SIZES), hop_sizes=[n // 4 for n in FFT_SIZES],
        win_lengths=list(FFT_SIZES), w_sc=0.0, w_log_mag=1.0, w_lin_mag=1.0)
    expected = float(theirs(x[:, None], y[:, None])) * len(FFT_SIZES)
    assert abs(float(multiscale_spectral_loss(x, y)) - expected) < 1e-4 * expected


def test_chunked_inference_equals_the_autograd_path():
    gen = torch.Generator().manual_seed(4)
    f = 100 + 900 * torch.rand(2, 50, generator=gen)
    a, d = torch.rand(2, 50, generator=gen), torch.rand(2, 50, 80, generator=gen)
    with torch.no_grad():
        fast, _ = harmonic_synth(f, a, d, SR, HOP)
    slow, _ = harmonic_synth(f, a.requires_grad_(), d, SR, HOP)
    torch.testing.assert_close(fast, slow.detach(), atol=1e-5, rtol=0)


def test_fft_size_is_the_least_fast_size():
    from waveloom.nn.ddsp.reverb import fft_size

    def smooth(n: int) -> bool:  # 2^a 3^b 5^c with b <= 2
        threes = 0
        for p in (2, 3, 5):
            while n % p == 0:
                n //= p
                threes += p == 3
        return n == 1 and threes <= 2

    assert fft_size(175999) == 180000
    for n in [1, 2, 7, 97, 1000, 4097, 175999, 131073]:
        assert fft_size(n) == next(m for m in range(n, 2 * n + 2) if smooth(m))


def test_noise_gradients_flow_to_the_band_magnitudes():
    mags = torch.rand(1, 8, 65, requires_grad=True)
    out = filtered_noise(mags, HOP, generator=torch.Generator().manual_seed(0))
    out.pow(2).sum().backward()
    assert torch.isfinite(mags.grad).all() and mags.grad.abs().sum() > 0


def test_harmonic_sum_same_bits_for_any_thread_count():
    """The CPU chunks are shared among threads; the result must not depend on how many."""
    from waveloom.nn.ddsp.harmonic import harmonic_sum

    gen = torch.Generator().manual_seed(0)
    cycles = torch.rand(2, 700, 64, generator=gen)
    pair = torch.rand(2, 700, 2, 60, generator=gen)
    pair[:, 300:, :, 30:] = 0.0  # chunks with fewer harmonics
    from waveloom.nn.ddsp import harmonic

    before, synth = torch.get_num_threads(), harmonic.SYNTH_THREADS
    try:
        torch.set_num_threads(1)
        one = harmonic_sum(cycles, pair)
        harmonic.SYNTH_THREADS = 2  # what transfer sets: chunks on two Python threads
        two = harmonic_sum(cycles, pair)
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)  # torch's own threads
        torch_two = harmonic_sum(cycles, pair)
    finally:
        torch.set_num_threads(before)
        harmonic.SYNTH_THREADS = synth
    assert torch.equal(one, torch_two)
    assert torch.equal(one, two)
    reference = torch.matmul(pair, torch.sin(2 * np.pi * torch.arange(1, 61)[:, None]
                                             * cycles.unsqueeze(-2)))
    assert (one - reference).abs().max() < 1e-4
