"""Feature statistics, as StyleGAN-V's `metric_utils.FeatureStats` keeps them.

Features arrive as float32 (the detector's output), are summed in float64, and give the mean and
the BIASED covariance: sum of outer products / N minus outer(mean, mean). (torchmetrics' FID
divides by N - 1; StyleGAN-V, hence FashionFlow's published FVD, divides by N.)
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..base.files import atomic_file


class FeatureStatistics:
    """Running float64 sums for the mean and covariance; optionally every feature row (for IS)."""

    def __init__(self, keep_all: bool = False):
        self.keep_all = keep_all
        self.num_items = 0
        self.num_features: int | None = None
        self._sum: np.ndarray | None = None
        self._outer_sum: np.ndarray | None = None
        self._rows: list[np.ndarray] = []

    def append(self, features: np.ndarray | torch.Tensor) -> None:
        """Add a batch of features (n, d)."""
        if isinstance(features, torch.Tensor):
            features = features.detach().cpu().numpy()
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"Features must be (batch, dim); the detector returned shape {x.shape}.")
        if self.num_features is None:
            self.num_features = x.shape[1]
            self._sum = np.zeros([self.num_features], dtype=np.float64)
            self._outer_sum = np.zeros([self.num_features, self.num_features], dtype=np.float64)
        elif x.shape[1] != self.num_features:
            raise ValueError(f"Got {x.shape[1]} features per clip after {self.num_features}.")
        x64 = x.astype(np.float64)
        self._sum += x64.sum(axis=0)
        self._outer_sum += x64.T @ x64
        self.num_items += x.shape[0]
        if self.keep_all:
            self._rows.append(x)

    def mean_and_covariance(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.num_items:
            raise ValueError("No features were collected.")
        mean = self._sum / self.num_items
        covariance = self._outer_sum / self.num_items - np.outer(mean, mean)
        return mean, covariance

    def all_features(self) -> np.ndarray:
        """Every row appended, float32 (num_items, dim)."""
        if not self.keep_all:
            raise ValueError("This FeatureStatistics was made with keep_all=False.")
        return np.concatenate(self._rows) if self._rows else np.zeros([0, self.num_features or 0], np.float32)

    # the real side's statistics are cached between runs (see evaluator.real_statistics_path) --------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the running sums to an .npz, atomically (no pickles)."""
        if self.keep_all or not self.num_items:
            raise ValueError("Only non-empty mean/covariance statistics are saved.")
        with atomic_file(path) as partial, open(partial, "wb") as file:
            np.savez(file, num_items=self.num_items, sum=self._sum, outer_sum=self._outer_sum)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStatistics:
        """Statistics `save` wrote; a ValueError (or np.load's own error) for a file that is not whole."""
        with np.load(path, allow_pickle=False) as data:
            stats = cls()
            stats.num_items = int(data["num_items"])
            stats._sum, stats._outer_sum = data["sum"], data["outer_sum"]
        dims = stats._sum.shape
        if stats.num_items < 1 or len(dims) != 1 or stats._outer_sum.shape != (dims[0], dims[0]):
            raise ValueError(f"{path} does not hold feature statistics of one consistent size.")
        stats.num_features = dims[0]
        return stats
