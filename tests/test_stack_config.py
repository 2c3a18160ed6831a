"""WaveNetStackConfig: the stack sizes every WaveNet-stack family shares, declared once."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from waveloom.errors import ConfigError
from waveloom.models.ada import ADAConfig
from waveloom.models.code_prior import CodePriorConfig
from waveloom.models.load import build_run_config
from waveloom.models.nsynth_ae import NSynthAEConfig
from waveloom.models.stack_config import STACK_FIELDS, WaveNetStackConfig, build_stack
from waveloom.models.wavenet import WaveNetConfig

# Each family's stack defaults before the fields moved into WaveNetStackConfig: residual,
# dilation, skip, end channels, layers per stack, stacks, kernel size, checkpointing.
DEFAULTS = {
    "wavenet": (WaveNetConfig, (64, 64, 256, 256, 10, 2, 2, False)),
    "nsynth_ae": (NSynthAEConfig, (512, 512, 256, 256, 10, 3, 3, False)),
    "ada": (ADAConfig, (64, 64, 128, 128, 10, 2, 2, False)),
    "code_prior": (CodePriorConfig, (64, 64, 128, 128, 10, 2, 2, False)),
}
SMALL = dict(residual_channels=8, dilation_channels=8, skip_channels=16, end_channels=16,
             layers_per_stack=3, stacks=1)


@pytest.mark.parametrize("family", sorted(DEFAULTS))
def test_families_keep_their_defaults(family):
    cls, expected = DEFAULTS[family]
    assert issubclass(cls, WaveNetStackConfig)
    config = cls()
    assert tuple(getattr(config, name) for name in STACK_FIELDS) == expected


@pytest.mark.parametrize("family", sorted(DEFAULTS))
def test_a_family_only_overrides_defaults_never_types(family):
    cls, _ = DEFAULTS[family]
    base = typing.get_type_hints(WaveNetStackConfig)
    hints = typing.get_type_hints(cls)
    assert {name: hints[name] for name in STACK_FIELDS} == {n: base[n] for n in STACK_FIELDS}
    # the stack fields stay flat keys of the model section (presets, saved configs, assets)
    names = [f.name for f in dataclasses.fields(cls)]
    assert set(STACK_FIELDS) <= set(names)


@pytest.mark.parametrize("family", sorted(DEFAULTS))
@pytest.mark.parametrize(
    "override,match",
    [
        ({"residual_channels": 0}, r"model\.residual_channels=0 must be > 0"),
        ({"stacks": -1}, r"model\.stacks=-1"),
        ({"kernel_size": 1}, r"model\.kernel_size=1 must be >= 2"),
        ({"layers_per_stack": 17}, r"model\.layers_per_stack=17: .*add stacks"),
    ],
)
def test_every_family_validates_the_stack_the_same_way(family, override, match):
    with pytest.raises(ConfigError, match=match) as err:
        build_run_config({"family": family, "model": override})
    assert "\n" not in str(err.value)


def test_flat_keys_load_and_reach_the_stack():
    run = build_run_config({"family": "code_prior",
                            "model": {**SMALL, "kernel_size": 3, "checkpoint_activations": True}})
    stack = build_stack(run.model, out_channels=5, input_levels=7)
    assert (stack.residual_channels, stack.dilation_channels, stack.skip_channels) == (8, 8, 16)
    assert stack.out1.out_channels == 16 and stack.out2.out_channels == 5
    assert len(stack.blocks) == 3 and stack.input_conv.kernel_size[0] == 3
    assert stack.checkpoint_activations is True
    # receptive field as WaveNetStackConfig's docstring states it
    assert stack.receptive_field == 1 + 2 * (1 + 1 * (2**3 - 1))
