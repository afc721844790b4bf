"""The two distribution scores, as StyleGAN-V computes them (`frechet_video_distance.py`,
`video_inception_score.py`), with clean-fid's safeguards around the matrix square root."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

SQRTM_EPS = 1e-6  # clean-fid's diagonal offset when sqrtm of the product is not finite
IMAGINARY_TOLERANCE = 1e-3  # clean-fid refuses a sqrtm whose diagonal has a larger imaginary part


@dataclass
class FrechetDistance:
    value: float
    max_imaginary: float = 0.0  # largest |imag| on the diagonal of sqrtm(S_g S_r), dropped as StyleGAN-V does
    warnings: list[str] = field(default_factory=list)


def frechet_distance(
    mu_generated: np.ndarray, sigma_generated: np.ndarray, mu_real: np.ndarray, sigma_real: np.ndarray
) -> FrechetDistance:
    """|mu_g - mu_r|^2 + Tr(S_g + S_r - 2 sqrtm(S_g S_r)), real part (StyleGAN-V's FVD).

    Safeguards from clean-fid: when sqrtm of the product is not finite (a singular product),
    retry with 1e-6 added to both diagonals. Where clean-fid raises on a large imaginary part,
    this reports the real part as StyleGAN-V does (so numbers stay comparable with published
    ones) and says so in a warning: with fewer clips than features (100 UBC test videos, 400 I3D
    features) the covariances are singular and a small imaginary residue is expected.
    """
    mu_g, mu_r = np.atleast_1d(mu_generated).astype(np.float64), np.atleast_1d(mu_real).astype(np.float64)
    s_g, s_r = np.atleast_2d(sigma_generated).astype(np.float64), np.atleast_2d(sigma_real).astype(np.float64)
    if mu_g.shape != mu_r.shape or s_g.shape != s_r.shape:
        raise ValueError(f"Feature sizes differ: {mu_g.shape} / {mu_r.shape}, {s_g.shape} / {s_r.shape}.")
    warnings = []
    root = scipy.linalg.sqrtm(s_g @ s_r)
    if not np.isfinite(root).all():
        warnings.append(f"sqrtm(S_g S_r) was not finite (singular product); retried with {SQRTM_EPS} on the diagonals.")
        offset = np.eye(s_g.shape[0]) * SQRTM_EPS
        root = scipy.linalg.sqrtm((s_g + offset) @ (s_r + offset))
    max_imaginary = float(np.abs(np.diagonal(root).imag).max()) if np.iscomplexobj(root) else 0.0
    if max_imaginary > IMAGINARY_TOLERANCE:
        warnings.append(
            f"sqrtm(S_g S_r) has an imaginary part up to {max_imaginary:.3g} on its diagonal (clean-fid would refuse "
            f"above {IMAGINARY_TOLERANCE}); the real part is reported, as StyleGAN-V does. More clips make it smaller."
        )
    m = np.square(mu_g - mu_r).sum()
    value = np.real(m + np.trace(s_g + s_r - root * 2))
    return FrechetDistance(float(value), max_imaginary, warnings)


def inception_score(probabilities: np.ndarray, num_splits: int = 10, shuffle_seed: int = 42) -> tuple[float, float]:
    """Video IS (StyleGAN-V's `isv`): mean and std over `num_splits` splits of exp(E[KL(p(y|x) || p(y))]).

    The class probabilities (n, classes) are shuffled with `RandomState(shuffle_seed)` first.
    StyleGAN-V splits at i * 2048 // 10 (its fixed sample count); here at i * n // 10, which is the
    same when n = 2048 and keeps every split non-empty when fewer clips are available.
    """
    probabilities = np.array(probabilities, dtype=np.float32)  # a copy: shuffled in place
    n = probabilities.shape[0]
    if n < num_splits:
        raise ValueError(f"Video IS needs at least {num_splits} clips ({num_splits} splits); got {n}.")
    np.random.RandomState(shuffle_seed).shuffle(probabilities)
    scores = []
    for i in range(num_splits):
        part = probabilities[i * n // num_splits : (i + 1) * n // num_splits]
        kl = part * (np.log(part) - np.log(np.mean(part, axis=0, keepdims=True)))
        kl = np.mean(np.sum(kl, axis=1))
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))
