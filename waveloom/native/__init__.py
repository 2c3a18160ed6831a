"""Compiled helpers shared by waveloom's C kernels: the build and cache of a kernel library
(:mod:`waveloom.native.build`) and the vector products they include (``vector_gemv.h``).

A layer-0 package (no torch, no other waveloom layer), so a model family's sampler
(:mod:`waveloom.models.samplernn_stepper`) and the WaveNet engine
(:mod:`waveloom.sampling.cbuild`) build their kernels the same way.
"""
