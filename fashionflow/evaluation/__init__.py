"""Evaluation: FVD and video IS exactly as StyleGAN-V defines them (which is what the FashionFlow
authors measured with), per-frame SSIM / PSNR / LPIPS, and the paper's test protocol.

One module per concern: `videos` (reading files and frame folders), `clips` (which 16 frames),
`detectors` (TorchScript I3D / C3D, fetched and cached), `statistics` (float64 mean and biased
covariance), `scores` (Frechet distance, inception score), `frame_metrics` (paired per-frame
metrics), `registry` (metric names and protocols), `evaluate` (putting them together) and
`protocol` (generating one video per test video).
"""

from .detectors import C3D, DETECTORS, I3D, DetectorUnavailableError, fetch_detector, load_detector
from .evaluate import EvaluationSettings, MetricUnavailableError, evaluate, format_table, write_report
from .protocol import ProtocolSettings, generate_test_videos, video_seed
from .registry import DEFAULT_METRICS, METRICS, protocol_name
from .scores import frechet_distance, inception_score
from .statistics import FeatureStatistics
from .videos import NoVideosError, VideoReadError, find_videos

__all__ = [
    "C3D",
    "DEFAULT_METRICS",
    "DETECTORS",
    "I3D",
    "METRICS",
    "DetectorUnavailableError",
    "EvaluationSettings",
    "FeatureStatistics",
    "MetricUnavailableError",
    "NoVideosError",
    "ProtocolSettings",
    "VideoReadError",
    "evaluate",
    "fetch_detector",
    "find_videos",
    "format_table",
    "frechet_distance",
    "generate_test_videos",
    "inception_score",
    "load_detector",
    "protocol_name",
    "video_seed",
    "write_report",
]
