"""exp() in f32 from +, -, *, floor and integer bit operations only: the same bits on CPU and GPU.

GPUs do not round exp() correctly (Vulkan allows 3 + 2|x| ulp, and vendors differ), and numpy's
np.exp on f32 may differ by a bit from one CPU library to another. A model that needs exp (AdEx)
uses this one instead. Its WGSL twin is `exp_f32` in shaders/models/exp_f32.wgsl, operation for
operation; both sides use only correctly rounded IEEE operations, so they agree bit for bit.

The method (Cephes' expf):
1. clamp x to [EXP_LO, EXP_HI] = [-87, 88], so the result is always a finite normal number
   (no infinities, no subnormals, which some GPUs flush to zero);
2. k = floor(x * log2(e) + 0.5), and r = x - k*LN2_HI - k*LN2_LO with ln 2 split in two: LN2_HI
   has 9 significant bits, so k*LN2_HI (|k| <= 127) and the first subtraction are exact,
   leaving |r| <= ln(2)/2 almost exactly;
3. e^r = 1 + r + r^2 * P(r), P a degree-5 polynomial in Horner form;
4. times 2^k, built as the f32 whose exponent bits are k + 127 (an exact multiplication).

A GPU compiler could fuse a product and an add into one fma (one rounding instead of two), or
regroup a sum (Mesa did: `(p*z + r) + 1` came out 1-2 ulp off on llvmpipe); the WGSL passes every
+, -, * result through `opaque()` so each is rounded on its own, as numpy does. Accuracy: within 1 ulp of the correctly rounded exp over [-87, 88] (measured on 5M points;
tests/test_models.py checks it).
"""
from __future__ import annotations

import numpy as np

F = np.float32
EXP_LO = F(-87.0)  # exp(-87) = 1.6e-38 > smallest normal f32 (1.18e-38)
EXP_HI = F(88.0)  # exp(88) = 1.65e38 < largest f32 (3.4e38)
LOG2E = F(1.44269504088896341)
LN2_HI = F(0.693359375)  # 355/512: 9 significant bits
LN2_LO = F(-2.12194440e-4)  # ln 2 - LN2_HI
# P(r) coefficients, highest degree first (Cephes expf.c)
P = (F(1.9875691500e-4), F(1.3981999507e-3), F(8.3334519073e-3), F(4.1665795894e-2),
     F(1.6666665459e-1), F(5.0000001201e-1))


def exp_f32(x: np.ndarray | np.floating | float) -> np.ndarray:
    """e**x in f32, elementwise, exactly as shaders/models/exp_f32.wgsl computes it (in-place numpy:
    `p *= r` is p*r, one rounding per operation; x*y == y*x exactly)."""
    shape = np.shape(x)
    x = np.minimum(np.maximum(np.asarray(x, F).reshape(-1), EXP_LO), EXP_HI)  # 1-D: in place below
    k = x * LOG2E
    k += F(0.5)
    np.floor(k, out=k)  # |k| <= 127
    r = k * LN2_HI
    np.subtract(x, r, out=r)  # x - k*LN2_HI, exact
    t = k * LN2_LO
    r -= t
    p = P[0] * r
    p += P[1]
    for c in P[2:]:
        p *= r
        p += c
    np.multiply(r, r, out=t)  # z = r*r
    p *= t
    p += r
    p += F(1.0)
    p *= ((k.astype(np.int32) + np.int32(127)) << np.int32(23)).view(F)  # 2**k, exact
    return p.reshape(shape)
