"""Liu et al. 2010, "Just noticeable difference for images with decomposition
model for separating edge and textured regions" (OpenJND's ``Liu et al/Matlab/JND_ID.m``).

The image is split into a structural part u (edges, smooth regions) and a
textural part f - u by total-variation decomposition; Chou & Li's texture
formula is applied to the gradients of each, clipped to [0, 10], weighted 0.7
(edges) and 1.4 (texture), and combined with luminance adaptation by the NAMM sum.

**Our decomposition.** The authors call W. Yin's parametric max-flow solver
(a Windows-only MEX, so no reference maps exist) for the anisotropic TV-L1
problem on 8-bit levels with 4-neighbour differences and lambda = 0.8:

    u = argmin_u  sum |u(x+1, y) - u(x, y)| + |u(x, y+1) - u(x, y)|  +  0.8 sum |u - f|

We solve the same problem with the Chambolle-Pock primal-dual algorithm
(forward differences, Neumann borders, step sizes 0.99 / sqrt(8), 300
iterations from u = f) and round u to 8-bit levels as the solver's output is.
The max-flow solver finds an exact minimiser; ours approaches one (TV-L1
minimisers need not be unique, and where several exist the two may pick
different ones), so maps can differ from the authors' where the decomposition does.
"""

from __future__ import annotations

import numpy as np

from ..images import luminance
from .pixel import background, luminance_adaptation, max_gradient, namm

LAMBDA = 0.8
ITERATIONS = 300


def tv_l1(f: np.ndarray, lam: float = LAMBDA, iterations: int = ITERATIONS) -> np.ndarray:
    """Anisotropic TV-L1 structure of ``f`` (Chambolle-Pock primal-dual, float32,
    in place: about 0.1 s per iteration per megapixel on one core)."""
    f = np.asarray(f, np.float32)
    step = np.float32(0.99 / np.sqrt(8.0))
    shrink = np.float32(step * lam)
    u, u_bar = f.copy(), f.copy()
    px, py = np.zeros_like(f), np.zeros_like(f)
    div, d, tmp = np.empty_like(f), np.empty_like(f), np.empty_like(f)
    for _ in range(iterations):
        # dual ascent on the forward differences of u_bar, projected on [-1, 1]
        np.subtract(u_bar[:, 1:], u_bar[:, :-1], out=tmp[:, :-1])
        px[:, :-1] += step * tmp[:, :-1]
        np.subtract(u_bar[1:, :], u_bar[:-1, :], out=tmp[:-1, :])
        py[:-1, :] += step * tmp[:-1, :]
        np.clip(px, -1, 1, out=px)
        np.clip(py, -1, 1, out=py)
        # primal descent: u + step div(p), then the L1 prox towards f (soft threshold)
        div[:] = px
        div[:, 1:] -= px[:, :-1]
        div += py
        div[1:, :] -= py[:-1, :]
        np.multiply(div, step, out=d)
        d += u
        d -= f
        np.abs(d, out=tmp)
        tmp -= shrink
        np.maximum(tmp, 0, out=tmp)
        np.copysign(tmp, d, out=tmp)
        tmp += f  # the new u
        np.multiply(tmp, 2, out=u_bar)
        u_bar -= u
        u, tmp = tmp, u
    return u.astype(np.float64)


def liu2010(image: np.ndarray) -> np.ndarray:
    """Liu et al. 2010: edge and texture masking on a TV-L1 decomposition, NAMM with
    luminance adaptation."""
    y = luminance(image)
    structure = np.clip(np.floor(tv_l1(y) + 0.5), 0, 255)
    texture = y - structure
    bg = background(y)
    alpha, beta = 0.0001 * bg + 0.115, 0.5 - 0.01 * bg
    edge_masking = np.clip(max_gradient(structure) * alpha + beta, 0, 10)
    texture_masking = np.clip(max_gradient(texture) * alpha + beta, 0, 10)
    return namm(luminance_adaptation(bg), 0.7 * edge_masking + 1.4 * texture_masking).astype(np.float32)
