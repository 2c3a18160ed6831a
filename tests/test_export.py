"""``waveloom export``: DDSP's streaming block and MelGAN as ONNX and TorchScript files that
agree with torch, and the block itself equal to the offline render."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from waveloom.app.export import export_checkpoint
from waveloom.checkpoint import save_checkpoint
from waveloom.cli import main
from waveloom.models.ddsp.block import STATE_NAMES, DDSPBlock
from waveloom.models.load import load_config
from waveloom.models.registry import build_model

from .conftest import CONFIGS

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the dev extras")


def _model(family: str, preset: str = "tiny", overrides: list[str] | None = None):
    run = load_config(CONFIGS / family / f"{preset}.yaml", overrides or [])
    torch.manual_seed(0)
    model = build_model(run).eval()
    # an untrained decoder is nearly silent; louder random weights exercise every path
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return run, model


def _features(frames: int, hop: int, seed: int = 0, batch: int = 1):
    g = torch.Generator().manual_seed(seed)
    f0 = 200.0 * 2.0 ** (torch.rand(batch, frames, generator=g) * 1.5)
    f0[:, frames // 3 : frames // 3 + 4] = 0.0  # an unvoiced stretch
    loud = -50.0 + 30.0 * torch.rand(batch, frames, generator=g)
    noise = torch.rand(batch, frames * hop, generator=g) * 2 - 1
    return f0, loud, noise


def _ten_ms_blocks(frames: int, frame_rate: int, sample_rate: int) -> list[int]:
    """Frames per 10 ms block: as many as end inside each successive 10 ms (2, 3, 2, 3, ...
    at 250 frames/s), after the two frames that prime the stream."""
    sizes, done, k = [], 2, 1
    while done < frames:
        end = min(frames, (k * frame_rate) // 100 + 2)
        if end > done:
            sizes.append(end - done)
            done = end
        k += 1
    return sizes


def _stream(step, block: DDSPBlock, f0, loud, noise, sizes):
    state = block.prime(f0[:, :2], loud[:, :2], noise[:, : 2 * block.hop])
    state = [state[k] for k in STATE_NAMES]
    outs, i = [], 2
    for n in sizes:
        res = step(f0[:, i : i + n], loud[:, i : i + n],
                   noise[:, i * block.hop : (i + n) * block.hop], state)
        outs.append(torch.as_tensor(res[0]))
        state, i = list(res[1:]), i + n
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize("reverb", [True, False])
def test_ddsp_block_streams_exactly_the_offline_render(reverb):
    _, model = _model("ddsp", overrides=[] if reverb else ["model.reverb_seconds=0"])
    f0, loud, noise = _features(60, model.hop)
    with torch.no_grad():
        offline = model.render(f0, loud, noise=noise)
    block = DDSPBlock(model)
    rng = np.random.default_rng(0)
    kept, total = [], 2  # random block lengths 1-5 over the 58 frames after the priming two
    while total < 60:
        kept.append(min(int(rng.integers(1, 6)), 60 - total))
        total += kept[-1]

    def torch_step(f, lo, no, state):
        with torch.no_grad():
            return block(f, lo, no, *state)

    streamed = _stream(torch_step, block, f0, loud, noise, kept)
    assert offline.abs().max() > 1e-3
    assert torch.allclose(streamed, offline[:, : streamed.shape[1]], atol=1e-5)


def test_onnx_runs_the_ddsp_block_in_10ms_blocks_and_matches_torch(tmp_path):
    """The issue's check: onnxruntime, 10 ms blocks, within 1e-4 of torch (and of the
    offline render the Python stream reproduces)."""
    run, model = _model("ddsp")
    ckpt = save_checkpoint(tmp_path / "ddsp.safetensors", model, run)
    result = export_checkpoint(ckpt, "onnx", tmp_path / "ddsp.onnx")
    assert result["check"]["ran"] and result["check"]["max_abs_diff"] < 1e-4
    session = ort.InferenceSession(str(tmp_path / "ddsp.onnx"),
                                   providers=["CPUExecutionProvider"])
    block = DDSPBlock(model)
    c = model.config
    f0, loud, noise = _features(82, model.hop, seed=3)  # 2 + 32 x 10 ms
    sizes = _ten_ms_blocks(82, c.frame_rate, c.sample_rate)
    assert set(sizes) == {2, 3}  # 10 ms at 250 frames/s

    def onnx_step(f, lo, no, state):
        feed = {"f0_hz": f.numpy(), "loudness_db": lo.numpy(), "noise": no.numpy()}
        feed.update({k: np.asarray(v) for k, v in zip(STATE_NAMES, state)})
        return [torch.from_numpy(x) for x in session.run(None, feed)]

    def torch_step(f, lo, no, state):
        with torch.no_grad():
            return block(f, lo, no, *[torch.as_tensor(s) for s in state])

    by_onnx = _stream(onnx_step, block, f0, loud, noise, sizes)
    by_torch = _stream(torch_step, block, f0, loud, noise, sizes)
    with torch.no_grad():
        offline = model.render(f0, loud, noise=noise)
    assert by_torch.abs().max() > 1e-3
    assert (by_onnx - by_torch).abs().max() < 1e-4
    assert (by_onnx - offline[:, : by_onnx.shape[1]]).abs().max() < 1e-4
    sidecar = json.loads((tmp_path / "ddsp.onnx.json").read_text())
    assert sidecar["info"]["latency_frames"] == 2 and sidecar["state"][0] == ["gru", "gru_out"]
    assert sidecar["tensors"]["noise"]["shape"] == ["batch", "samples"]


def test_torchscript_ddsp_ae_block_takes_z(tmp_path):
    run, model = _model("ddsp", overrides=["model.z_dims=4", "model.encoder_hidden=16"])
    ckpt = save_checkpoint(tmp_path / "ae.safetensors", model, run)
    result = export_checkpoint(ckpt, "torchscript", tmp_path / "ae.pt")
    assert result["inputs"][-1] == "z"
    assert result["check"]["max_abs_diff"] < 1e-5
    loaded = torch.jit.load(str(tmp_path / "ae.pt"))
    block = DDSPBlock(model)
    state = block.initial_state(1)
    f0, loud, noise = _features(4, model.hop)
    z = torch.randn(1, 4, 4)
    with torch.no_grad():
        want = block(f0, loud, noise, *(state[k] for k in STATE_NAMES), z)
    got = loaded(f0, loud, noise, *(state[k] for k in STATE_NAMES), z)
    assert torch.allclose(got[0], want[0], atol=1e-6)


def test_melgan_exports_to_onnx_and_the_verb_prints_the_check(tmp_path, capsys):
    run, model = _model("melgan")
    ckpt = save_checkpoint(tmp_path / "melgan.safetensors", model, run)
    assert main(["export", str(ckpt), "--format", "onnx", "--out",
                 str(tmp_path / "mg.onnx")]) == 0
    assert "max |file - torch|" in capsys.readouterr().out
    session = ort.InferenceSession(str(tmp_path / "mg.onnx"), providers=["CPUExecutionProvider"])
    mel = model.mel(torch.randn(2, 2048) * 0.1)
    got = session.run(None, {"mel": mel.numpy()})[0]
    with torch.no_grad():
        want = model.generator(mel)[:, 0].clamp(-1, 1)
    assert got.shape == tuple(want.shape)
    assert np.abs(got - want.numpy()).max() < 1e-4


def test_export_errors_are_one_line(tmp_path, capsys):
    run, model = _model("wavegan")
    ckpt = save_checkpoint(tmp_path / "wavegan.safetensors", model, run)
    assert main(["export", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "cannot be exported yet" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_wavenet_step_from_zero_queues_equals_the_parallel_forward(tmp_path):
    """The exported single step (caches as inputs and outputs), stepped from zero queues,
    gives the padded parallel forward's parameters at every position: the shipped WaveNet,
    with its pitch excitation and note clock computed inside the step; and ONNX Runtime
    matches the torch step."""
    from waveloom.models.load import load_checkpoint
    from waveloom.models.wavenet_step import WaveNetStep
    from waveloom.shipped import SHIPPED

    ckpt = SHIPPED / "wavenet-small-notes.safetensors"
    model, _ = load_checkpoint(ckpt)
    step = WaveNetStep(model).eval()
    batch, length, onset = 2, 24, 5
    codes = torch.randint(0, 256, (batch, length), generator=torch.Generator().manual_seed(0))
    pitch, instrument = torch.tensor([60, 67]), torch.tensor([1, -1])
    with torch.no_grad():
        g = model.global_cond(pitch, instrument, batch=batch, dropout=False)
        local = torch.cat(model._clock_features(pitch, batch, 0, length, onset), 1)
        want = model.stack(codes, g, local, padded=True)  # [B, P, T]
    result = export_checkpoint(ckpt, "onnx", tmp_path / "wn.onnx")
    assert result["check"]["max_abs_diff"] < 1e-3 and len(result["state"]) == len(step.sizes)
    session = ort.InferenceSession(str(tmp_path / "wn.onnx"), providers=["CPUExecutionProvider"])
    queues = step.initial_queues(batch)
    names = [f"queue_{i}" for i in range(len(queues))]
    onnx_queues = {k: q.numpy() for k, q in zip(names, queues)}
    got_torch, got_onnx = [], []
    for t in range(length):
        args = (codes[:, t], pitch, instrument, torch.full((batch,), t),
                torch.full((batch,), onset))
        with torch.no_grad():
            out = step(*args, *queues)
        got_torch.append(out[0])
        queues = list(out[1:])
        feed = dict(zip(["code", "pitch", "instrument", "position", "onset"],
                        (a.numpy() for a in args)))
        res = session.run(None, {**feed, **onnx_queues})
        got_onnx.append(torch.from_numpy(res[0]))
        onnx_queues = dict(zip(names, res[1:]))
    by_step = torch.stack(got_torch, -1)
    assert torch.allclose(by_step, want, atol=1e-4, rtol=1e-5)
    assert (torch.stack(got_onnx, -1) - by_step).abs().max() < 1e-3
