"""Generation engines, kept apart from the networks they drive."""

from waveloom.sampling.incremental import (
    SamplingPlan,
    draw_uniforms,
    sample_incremental,
    sample_naive,
)

__all__ = ["SamplingPlan", "draw_uniforms", "sample_incremental", "sample_naive"]
