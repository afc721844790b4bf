"""Evaluation: FVD and video IS exactly as StyleGAN-V defines them (which is what the FashionFlow
authors measured with), per-frame SSIM / PSNR / LPIPS, and the paper's test protocol.

One module per concern: `videos` (reading files and frame folders), `clips` (which 16 frames),
`detectors` (TorchScript I3D / C3D, fetched and cached), `statistics` (float64 mean and biased
covariance), `scores` (Frechet distance, inception score), `frame_metrics` (paired per-frame
metrics), `registry` (metric names and protocols), `evaluator` (putting them together: `evaluate()`) and
`protocol` (generating one video per test video), `settings` (the settings of both, with their flags) and
`cli` (the `evaluate` command).
"""

from ..base.lazy import lazy_attributes

# Imported on first use (PEP 562), so that the command line's `--help` does not load torch.
_LAZY = {
    **dict.fromkeys(
        ["C3D", "DETECTORS", "I3D", "DetectorUnavailableError", "fetch_detector", "load_detector"], ".detectors"
    ),
    **dict.fromkeys(["MetricUnavailableError", "evaluate", "format_table", "write_report"], ".evaluator"),
    **dict.fromkeys(["EvaluationSettings", "ProtocolSettings"], ".settings"),
    **dict.fromkeys(["generate_test_videos", "video_seed"], ".protocol"),
    **dict.fromkeys(["DEFAULT_METRICS", "METRICS", "protocol_name"], ".registry"),
    **dict.fromkeys(["frechet_distance", "inception_score"], ".scores"),
    "FeatureStatistics": ".statistics",
    **dict.fromkeys(["NoVideosError", "VideoReadError", "find_videos"], ".videos"),
}

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


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
