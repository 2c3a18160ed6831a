"""Shared layers, each tested alone (DESIGN.md): causal convs with cached steps, the WaveNet
stack, conditioning modules and output heads."""

from waveloom.nn.conditioning import GlobalConditioning, UpsampleConditioning
from waveloom.nn.conv import CausalConv1d, Conv1dSame, causal_padding, same_padding
from waveloom.nn.heads import CategoricalHead, DiscretizedLogisticMixtureHead, build_head
from waveloom.nn.wavenet import ResidualBlock, WaveNetStack

__all__ = [
    "CategoricalHead",
    "CausalConv1d",
    "Conv1dSame",
    "DiscretizedLogisticMixtureHead",
    "GlobalConditioning",
    "ResidualBlock",
    "UpsampleConditioning",
    "WaveNetStack",
    "build_head",
    "causal_padding",
    "same_padding",
]
