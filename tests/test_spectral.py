"""waveloom.audio.spectral against formulas, known signals and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from waveloom.audio import spectral as S

SR = 16000


def sine(f_hz: float, seconds: float = 1.0, sr: int = SR, amp: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * f_hz * t)).astype(np.float32)


def harmonic_tone(f0_hz: float = 220.0, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    tone = sum(0.5 / n * np.sin(2 * np.pi * f0_hz * n * t) for n in range(1, 8))
    return (tone * np.exp(-2.0 * t)).astype(np.float32)


def wrap(phase):
    return (phase + np.pi) % (2 * np.pi) - np.pi


# ------------------------------------------------------------------------------------ STFT


@pytest.mark.parametrize("n_fft,hop", [(1024, 256), (512, 128), (256, 64), (64, 16)])
def test_stft_istft_round_trip(n_fft, hop):
    x = torch.randn(2, 3, 4001, generator=torch.Generator().manual_seed(0))
    spec = S.stft(x, n_fft, hop)
    assert spec.shape == (2, 3, n_fft // 2 + 1, 1 + 4001 // hop)
    assert spec.is_complex()
    y = S.istft(spec, hop, length=x.shape[-1])
    assert y.shape == x.shape
    assert (y - x).abs().max() < 1e-5


def test_stft_accepts_numpy_and_single_samples():
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    assert torch.allclose(S.stft(x), S.stft(torch.from_numpy(x)))
    one = S.stft(np.array([0.5], dtype=np.float32), 256, 64)
    assert one.shape == (129, 1)
    # One sample at the frame centre: a flat spectrum of height 0.5 * hann(centre) = 0.5.
    assert torch.allclose(one.abs(), torch.full((129, 1), 0.5), atol=1e-6)
    with pytest.raises(ValueError):
        S.stft(np.zeros(0, dtype=np.float32))


def test_stft_peak_is_n_fft_over_4_for_unit_sine_on_a_bin():
    n_fft = 512
    k = 40
    x = sine(k * SR / n_fft)
    mag = S.magnitude(S.stft(x, n_fft, 128))[:, 4:-4]
    assert (mag.argmax(dim=0) == k).all()
    assert torch.allclose(mag[k], torch.full_like(mag[k], n_fft / 4), rtol=1e-3)


def test_log_magnitude_floors_at_eps():
    spec = torch.tensor([0.0, 1e-9, 1.0, math.e], dtype=torch.complex64)
    out = S.log_magnitude(spec, eps=1e-5)
    expected = torch.tensor([math.log(1e-5), math.log(1e-5), 0.0, 1.0])
    assert torch.allclose(out, expected, atol=1e-6)


# ------------------------------------------------------------------------------------- mel


def test_slaney_mel_scale_formula():
    assert S.hz_to_mel(1000.0) == pytest.approx(15.0)
    assert S.hz_to_mel(500.0) == pytest.approx(7.5)  # linear: 200/3 Hz per mel below 1 kHz
    assert S.hz_to_mel(6400.0) - S.hz_to_mel(1000.0) == pytest.approx(27.0)  # 27 mels per x6.4
    f = np.geomspace(1.0, 20000.0, 200)
    assert np.allclose(S.mel_to_hz(S.hz_to_mel(f)), f, rtol=1e-10)
    assert np.all(np.diff(S.hz_to_mel(f)) > 0)


def test_mel_filterbank_shape_area_and_peaks():
    n_fft, n_mels = 2048, 64
    fb = S.mel_filterbank(SR, n_fft, n_mels).double().numpy()
    assert fb.shape == (n_mels, n_fft // 2 + 1)
    assert (fb >= 0).all()
    df = SR / n_fft
    # Slaney normalisation: each triangle has unit area in Hz (up to the FFT grid's sampling).
    assert np.allclose(fb.sum(axis=1) * df, 1.0, atol=0.05)
    edges = S.mel_to_hz(np.linspace(0.0, S.hz_to_mel(SR / 2), n_mels + 2))
    bins_hz = np.arange(n_fft // 2 + 1) * df
    for i in range(n_mels):
        peak_hz = bins_hz[fb[i].argmax()]
        assert abs(peak_hz - edges[i + 1]) <= df  # peaks at its centre frequency
        outside = (bins_hz <= edges[i]) | (bins_hz >= edges[i + 2])
        assert (fb[i][outside] == 0).all()  # and is zero outside its two neighbours' centres


def test_mel_of_white_noise_is_flat():
    """Area normalisation means a flat spectrum gives a flat mel spectrum."""
    noise = torch.randn(4, SR * 2, generator=torch.Generator().manual_seed(1))
    mel = S.mel_spectrogram(noise, SR, n_fft=2048, hop=512, n_mels=40, log=False)
    profile = mel.mean(dim=(0, -1))[2:]  # the lowest bands hold only one or two FFT bins
    assert (profile / profile.mean() - 1).abs().max() < 0.1


def test_mel_spectrogram_peaks_in_the_band_of_1khz():
    n_mels = 80
    mel = S.mel_spectrogram(sine(1000.0), SR, n_fft=1024, hop=256, n_mels=n_mels)
    assert mel.shape == (n_mels, 1 + SR // 256)
    band = int(mel.mean(dim=-1).argmax())
    edges = S.mel_to_hz(np.linspace(0.0, S.hz_to_mel(SR / 2), n_mels + 2))
    assert edges[band] < 1000.0 < edges[band + 2]
    # ... and it is the band whose centre is nearest to 1 kHz.
    assert band == int(np.abs(edges[1:-1] - 1000.0).argmin())


def test_mel_filterbank_rejects_bad_ranges():
    with pytest.raises(ValueError):
        S.mel_filterbank(SR, 1024, 80, fmin=5000, fmax=4000)
    with pytest.raises(ValueError):
        S.mel_filterbank(SR, 1024, 80, fmax=SR)


# ------------------------------------------------------------------------------------- CQT


def test_cqt_a4_peaks_at_bin_45_with_amplitude_scale():
    c1 = 32.703
    x = sine(440.0, amp=0.5)
    spec = S.cqt(x, SR, hop=256, fmin=c1, n_bins=84, bins_per_octave=12)
    assert spec.shape == (84, 1 + len(x) // 256)
    mag = spec.abs()[:, 40:-40]  # away from the edges, where long kernels see the padding
    assert (mag.argmax(dim=0) == 45).all()  # A4 is 45 semitones above C1
    assert torch.allclose(mag[45], torch.full_like(mag[45], 0.5), rtol=0.02)
    assert S.cqt_frequencies(c1, 84, 12)[45] == pytest.approx(440.0, rel=1e-3)


@pytest.mark.parametrize("bins_per_octave", [12, 24])
def test_cqt_peak_follows_the_pitch(bins_per_octave):
    freqs = S.cqt_frequencies(55.0, 6 * bins_per_octave, bins_per_octave)
    for k in (3, 2 * bins_per_octave + 1, 5 * bins_per_octave - 2):
        mag = S.cqt(sine(freqs[k], 0.5), SR, 256, 55.0, 6 * bins_per_octave, bins_per_octave)
        assert int(mag.abs()[:, 10:-10].mean(dim=-1).argmax()) == k


def test_cqt_equals_direct_time_domain_correlation():
    """The spectral-kernel shortcut must equal correlating each frame with each kernel."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(6000)
    hop, fmin, n_bins, bpo = 200, 65.0, 48, 12
    fast = S.cqt(torch.from_numpy(x), SR, hop, fmin, n_bins, bpo, threshold=0.0).numpy()
    q = 1.0 / (2 ** (1 / bpo) - 1)
    for k in (0, 17, 47):
        f_k = fmin * 2 ** (k / bpo)
        n_k = int(np.ceil(q * SR / f_k))
        offsets = np.arange(n_k) - n_k // 2  # relative to the frame centre
        w = 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(n_k) + 0.5) / n_k)
        kernel = 2 * w / w.sum() * np.exp(2j * np.pi * f_k * offsets / SR)
        for m in (0, 7, 29):
            idx = m * hop + offsets
            seg = np.where((idx >= 0) & (idx < len(x)), x[np.clip(idx, 0, len(x) - 1)], 0.0)
            direct = np.sum(seg * np.conj(kernel))
            # A unit sine gives |C| = 1; the dropped image at -f_k is ~1e-5 of that.
            assert abs(fast[k, m] - direct) < 1e-5


def test_cqt_batch_equals_items_and_rejects_nyquist():
    x = torch.randn(2, 3000, generator=torch.Generator().manual_seed(3))
    batch = S.cqt(x, SR, 128, 65.0, 60)
    for i in range(2):
        assert torch.allclose(batch[i], S.cqt(x[i], SR, 128, 65.0, 60), atol=1e-5)
    with pytest.raises(ValueError, match="sr/2"):
        S.cqt(x, SR, 256, fmin=32.7, n_bins=120)


# ------------------------------------------------------------------- instantaneous frequency


@pytest.mark.parametrize("f_hz", [440.0, 1234.5, 5000.0])
def test_if_of_a_sine_is_its_normalised_frequency(f_hz):
    n_fft, hop = 512, 64
    spec = S.stft(sine(f_hz).astype(np.float64), n_fft, hop)
    k = int(round(f_hz * n_fft / SR))
    inst = S.instantaneous_frequency(torch.angle(spec))[k, 1:]
    expected = wrap(2 * np.pi * f_hz * hop / SR) / np.pi
    assert inst.min() >= -1 and inst.max() <= 1
    assert np.allclose(inst[8:-8].numpy(), expected, atol=1e-4)


def test_if_of_cqt_bin_matches_the_sine():
    f_hz, hop = 440.0, 32
    spec = S.cqt(sine(f_hz).astype(np.float64), SR, hop, fmin=32.703)
    inst = S.instantaneous_frequency(torch.angle(spec[45]))[20:-20]
    expected = wrap(2 * np.pi * f_hz * hop / SR) / np.pi  # 1.76 wraps to -0.24
    assert np.allclose(inst.numpy(), expected, atol=1e-4)


def test_if_phase_round_trips():
    gen = torch.Generator().manual_seed(4)
    inst = torch.rand(3, 65, 40, generator=gen, dtype=torch.float64) * 2 - 1
    assert torch.allclose(S.instantaneous_frequency(S.phase_from_if(inst)), inst, atol=1e-9)
    phase = (torch.rand(65, 40, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi
    back = S.phase_from_if(S.instantaneous_frequency(phase))
    assert np.allclose(wrap((back - phase).numpy()), 0.0, atol=1e-9)
    # along another axis too
    inst_t = inst.transpose(-1, -2)
    back_t = S.instantaneous_frequency(S.phase_from_if(inst_t, time_axis=-2), time_axis=-2)
    assert torch.allclose(back_t, inst_t, atol=1e-9)


# ---------------------------------------------------------------------------- Griffin-Lim


def test_fast_griffin_lim_reconstructs_a_harmonic_tone():
    x = harmonic_tone()
    n_fft, hop = 1024, 256
    mag = S.stft(x, n_fft, hop).abs()
    fast = S.griffin_lim(mag, 60, n_fft, hop, momentum=0.99, length=len(x), progress=False)
    classic = S.griffin_lim(mag, 60, n_fft, hop, momentum=0.0, length=len(x), progress=False)
    assert fast.shape == (len(x),)
    sc_fast = float(S.spectral_convergence(mag, S.stft(fast, n_fft, hop)))
    sc_classic = float(S.spectral_convergence(mag, S.stft(classic, n_fft, hop)))
    # measured 0.049 (fast) and 0.15 (classic) on this tone
    assert sc_fast < 0.1
    assert sc_fast < 0.7 * sc_classic
    again = S.griffin_lim(mag, 60, n_fft, hop, length=len(x), progress=False)
    assert torch.equal(fast, again)  # seeded initial phase: deterministic


def test_griffin_lim_checks_n_fft():
    with pytest.raises(ValueError, match="n_fft"):
        S.griffin_lim(torch.ones(513, 10), 1, n_fft=512, progress=False)


# ------------------------------------------------------------------------------- distance


def test_multiscale_spectral_distance():
    x = torch.from_numpy(harmonic_tone())
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    assert float(S.multiscale_spectral_distance(x, x)) == 0.0
    dists = [float(S.multiscale_spectral_distance(x, x + lvl * noise)) for lvl in (1e-3, 1e-2, 0.1)]
    assert 0 < dists[0] < dists[1] < dists[2]
    a, b = x + 0.01 * noise, x
    assert torch.allclose(
        S.multiscale_spectral_distance(a, b), S.multiscale_spectral_distance(b, a)
    )
    batch = torch.stack([x, x + 0.1 * noise])
    d = S.multiscale_spectral_distance(batch, torch.stack([x, x]))
    assert d.shape == (2,) and d[0] == 0 and d[1] == pytest.approx(dists[2], rel=1e-5)
    est = (x + 0.1 * noise).requires_grad_()
    S.multiscale_spectral_distance(est, x).backward()
    assert torch.isfinite(est.grad).all() and est.grad.abs().sum() > 0
