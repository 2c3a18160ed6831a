"""The hyper-parameters of a WaveNet stack, shared by every family that builds one.

WaveNet, the NSynth autoencoder's decoder, an ADA level's decoder and the code prior all run a
:class:`waveloom.nn.wavenet.WaveNetStack`. Its sizes are declared once, here, in
:class:`WaveNetStackConfig`, with one ``validate`` and one builder, :func:`build_stack`.

Design: the family configs *subclass* :class:`WaveNetStackConfig` rather than nest it, so the
stack fields stay flat keys of the ``model`` section. ``model.residual_channels=32`` on the
command line, every preset in ``configs/``, the config saved in every checkpoint and the shipped
assets in ``waveloom/assets`` keep loading unchanged (a nested ``model.stack.*`` section would
break all of them). A family whose defaults differ (the NSynth paper's 512-channel decoder, the
narrower skip path of ADA and the code prior) re-states only those defaults in its subclass;
the field's meaning and its checks stay here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from waveloom.config import ModelConfig, require_positive
from waveloom.errors import ConfigError
from waveloom.nn.wavenet import WaveNetStack

#: More layers per stack are refused: the 16th layer's dilation, 2^15 samples, already spans
#: 2 s at 16 kHz; a longer context comes from more stacks.
MAX_LAYERS_PER_STACK = 16


@dataclass
class WaveNetStackConfig(ModelConfig):
    """Sizes of a WaveNet stack (van den Oord et al. 2016); defaults are a mid-sized WaveNet.

    Receptive field in input steps: ``1 + (kernel_size - 1) * (1 + stacks * (2^L - 1))`` with
    ``L = layers_per_stack``.
    """

    residual_channels: int = 64  # C_res: width of the residual path between blocks
    dilation_channels: int = 64  # C_dil: the gated conv makes 2 * C_dil channels
    skip_channels: int = 256  # width of the summed skip path
    end_channels: int = 256  # hidden width of the two output 1x1 layers
    layers_per_stack: int = 10  # dilations 1, 2, ..., 2^(layers_per_stack - 1)
    stacks: int = 2  # times the dilation cycle repeats
    kernel_size: int = 2  # taps of each causal dilated conv
    # Recompute each residual block in the backward pass instead of storing its activations:
    # ~1/3 more compute for a training window several times longer in the same memory.
    checkpoint_activations: bool = False

    def validate(self) -> None:
        """Reject stack sizes that cannot be built; messages name ``model.<field>``."""
        require_positive(
            self, "residual_channels", "dilation_channels", "skip_channels", "end_channels",
            "layers_per_stack", "stacks")
        if self.kernel_size < 2:
            raise ConfigError(f"model.kernel_size={self.kernel_size} must be >= 2")
        if self.layers_per_stack > MAX_LAYERS_PER_STACK:
            raise ConfigError(
                f"model.layers_per_stack={self.layers_per_stack}: dilation 2^"
                f"{self.layers_per_stack - 1} is absurd; use <= {MAX_LAYERS_PER_STACK} and add "
                "stacks instead"
            )


#: The output distributions a stack's last layer can parameterise (:func:`build_output_head`).
HEADS = ("categorical", "logistic_mixture", "gaussian")


@dataclass
class HeadedStackConfig(WaveNetStackConfig):
    """A stack plus the distribution its output parameterises: the WaveNet's and the NSynth
    decoder's choice, declared once.

    ``categorical`` is the paper's 256-way mu-law softmax. ``logistic_mixture`` (PixelCNN++ /
    Parallel WaveNet) and ``gaussian`` (ClariNet) are discretised over ``mixture_levels``: 256
    mu-law codes (bits comparable with the softmax's) or 65536 16-bit linear levels, which
    remove the 8-bit mu-law quantisation floor (on held-out FluidR3 notes, quantising the
    originals to 256 mu-law codes alone costs 5.56 of the multi-scale spectral distance; 16-bit
    costs 0.33: benchmarks/quantisation_floor.py). A continuous head also samples colder by
    shrinking its scale, which a softmax over codes does only crudely.
    """

    head: str = "categorical"  # categorical | logistic_mixture | gaussian
    mixture_components: int = 10  # logistic_mixture only
    mixture_levels: int = 256  # 256: mu-law codes; 65536: 16-bit linear (not categorical)

    def validate(self) -> None:
        super().validate()
        require_positive(self, "mixture_components")
        if self.head not in HEADS:
            raise ConfigError(f"model.head={self.head!r}: use one of {', '.join(HEADS)}")
        if self.head != "categorical" and self.mixture_levels not in (256, 65536):
            raise ConfigError(
                f"model.mixture_levels={self.mixture_levels}: use 256 (mu-law) or 65536 (16-bit)"
            )


def build_output_head(config: HeadedStackConfig) -> Any:
    """The head module ``config`` names (``waveloom.nn.heads``); its ``num_params`` sizes the
    stack's output layer."""
    from waveloom.nn.heads import build_head

    return build_head(config.head, config.mixture_components, config.mixture_levels)


#: The stack fields, in declaration order (what :func:`build_stack` passes on).
STACK_FIELDS = tuple(f.name for f in dataclasses.fields(WaveNetStackConfig))


def build_stack(config: WaveNetStackConfig, **wiring: Any) -> WaveNetStack:
    """The :class:`WaveNetStack` sized by ``config``'s stack fields.

    ``wiring`` is what differs per family and is not a hyper-parameter of the stack:
    ``out_channels`` (the head's parameters per step), ``input`` / ``input_levels`` (how the
    previous step's code enters) and the global / local conditioning widths.
    """
    sizes = {name: getattr(config, name) for name in STACK_FIELDS}
    return WaveNetStack(**sizes, **wiring)
