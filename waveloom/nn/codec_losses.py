"""A neural codec's reconstruction loss and EnCodec's loss balancer.

**Multi-scale mel loss** (EnCodec, sec. 3.4): for windows of 2^i samples (hop a quarter of
it), L1 plus L2 between the 64-band mel magnitudes of the decoded and the original audio,
averaged over scales. The small windows judge attacks, the large ones pitch.

**Loss balancer** (EnCodec, sec. 3.4). The generator's losses (time-domain L1, mel,
adversarial, feature matching) have gradients of very different sizes at the decoder's output
``y``, and their sizes drift as the discriminator learns; fixed weights then hand training to
whichever is loudest. The balancer takes each loss's gradient ``g_i = dl_i / dy``, divides it
by an exponential moving average of its norm, and sums them with weights ``w_i / sum(w)``: the
weight is then the share of the update a loss gets, whatever its scale. :meth:`surrogate`
returns a scalar whose gradient through ``y`` is that balanced sum, for the trainer's ordinary
``backward``; its value is the plain weighted sum of the losses, for the logs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from waveloom.audio.spectral import mel_spectrogram


def multiscale_mel_loss(pred: Tensor, target: Tensor, sample_rate: int,
                        windows: Sequence[int] = (256, 512, 1024, 2048), n_mels: int = 64,
                        log: bool = False) -> Tensor:
    """Mean over ``windows`` of L1 + L2 between mel magnitudes of ``pred`` and ``target``
    ``[B, T]`` (target a constant); with ``log``, L1 between log mels instead (HiFi-GAN's
    mel loss at several resolutions: quiet bands count as much as loud ones)."""
    total = pred.new_zeros(())
    for n_fft in windows:
        kw = dict(sr=sample_rate, n_fft=n_fft, hop=n_fft // 4, n_mels=min(n_mels, n_fft // 4),
                  log=log)
        a = mel_spectrogram(pred, **kw)
        b = mel_spectrogram(target.detach(), **kw)
        total = total + F.l1_loss(a, b) + (0.0 if log else F.mse_loss(a, b))
    return total / len(windows)


class LossBalancer(nn.Module):
    """Balance losses by the gradient they send into one output (see the module docstring).

    ``weights``: name -> share of the update; ``decay``: of the norms' moving average
    (EnCodec: 0.999). The norms are buffers, so a resumed run balances as the original did.
    """

    def __init__(self, weights: dict[str, float], decay: float = 0.999) -> None:
        super().__init__()
        if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"loss balancer weights {weights}: give non-negative shares, "
                             "at least one positive")
        self.names = list(weights)
        total = sum(weights.values())
        self.shares = [weights[n] / total for n in self.names]
        self.decay = decay
        self.register_buffer("norms", torch.zeros(len(self.names)))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def surrogate(self, losses: dict[str, Tensor], output: Tensor) -> Tensor:
        """A scalar: value = sum of share x loss; gradient through ``output`` = the balanced
        sum of the losses' gradients (training), or the plain weighted one (eval, no update).

        ``losses`` may hold a subset of the names (a warm-up before the adversarial terms):
        those are balanced at their own shares and only their norms move, so the others'
        averages start fresh from their first gradient when they join."""
        present = [i for i, n in enumerate(self.names) if n in losses]
        value = sum(self.shares[i] * losses[self.names[i]] for i in present)
        if not (self.training and output.requires_grad):
            return value
        grads = [torch.autograd.grad(losses[self.names[i]], output, retain_graph=True,
                                     allow_unused=True)[0] for i in present]
        norms = torch.stack([g.norm() if g is not None else output.new_zeros(())
                             for g in grads]).detach()
        with torch.no_grad():
            at = torch.tensor(present, device=self.norms.device)
            old = self.norms[at]
            fresh = old == 0  # never measured (or never sent a gradient)
            self.norms[at] = torch.where(fresh, norms,
                                         self.decay * old + (1 - self.decay) * norms)
            self.count.add_(1)  # balanced updates so far (a record; `fresh` reads the norms)
        balanced = torch.zeros_like(output)
        for g, i in zip(grads, present):
            if g is not None:
                balanced = balanced + self.shares[i] * g / self.norms[i].clamp_min(1e-12)
        # d/d(params) of (output * balanced).sum() is J^T balanced: the balanced update.
        push = (output * balanced.detach()).sum()
        return value.detach() + push - push.detach()
