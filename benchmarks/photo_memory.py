"""Peak memory of reading one photo, by size, format and bit depth: today's `load_image` beside the
one on `main` before the hardening (its file taken from git), each photo in a fresh process.

    python benchmarks/photo_memory.py            # table + benchmarks/results/photo_memory.json
    python benchmarks/photo_memory.py --quick    # the small and middle photos only

"Peak" is how much the process's peak resident memory grew while reading the photo and fitting
it to the 640 x 512 frame (Linux: the peak VmHWM is reset through /proc/self/clear_refs after the
imports). The frame itself is 1 MB (RGB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# (label, width, height, format, mode)
PHOTOS = [
    ("12 MP JPEG (phone)", 4000, 3000, "JPEG", "RGB"),
    ("48 MP JPEG (phone)", 8000, 6000, "JPEG", "RGB"),
    ("81 MP JPEG (studio)", 10400, 7800, "JPEG", "RGB"),
    ("200 MP JPEG (phone)", 16320, 12240, "JPEG", "RGB"),
    ("24 MP PNG 8-bit RGB", 6000, 4000, "PNG", "RGB"),
    ("49 MP PNG 16-bit grey", 7000, 7000, "PNG", "I;16"),
    ("24 MP WebP", 6000, 4000, "WEBP", "RGB"),
]
QUICK = {"12 MP JPEG (phone)", "48 MP JPEG (phone)", "24 MP PNG 8-bit RGB", "49 MP PNG 16-bit grey"}

MEASURE = textwrap.dedent("""
    import json, sys, time, importlib.util
    spec = importlib.util.spec_from_file_location("image_under_test", sys.argv[1])
    image = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(image)
    def resident_mb(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to the current size
    before = resident_mb("VmRSS")
    started = time.perf_counter()
    from concurrent.futures import ThreadPoolExecutor
    kwargs = {"working_side": 640} if "working_side" in image.load_image.__code__.co_varnames else {}

    def read(_):
        return image.frame_image(image.load_image(sys.argv[2], **kwargs), 640, 512, "pad")

    try:
        with ThreadPoolExecutor(int(sys.argv[3])) as pool:  # several visitors' uploads at once
            list(pool.map(read, range(int(sys.argv[3]))))
        outcome = "read"
    except Exception as error:
        outcome = "refused: " + str(error)[:60]
    seconds = time.perf_counter() - started
    grown = resident_mb("VmHWM") - before
    print(json.dumps({"outcome": outcome, "peak_mb": round(grown, 1), "seconds": round(seconds, 2)}))
""")


def make_photo(folder: Path, label: str, width: int, height: int, fmt: str, mode: str) -> Path:
    """A smooth test card (gradients and bands): compresses like a studio shot, within 50 MB."""
    path = folder / f"{label.split(' (')[0].replace(' ', '_')}.{fmt.lower()}"
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    if mode == "I;16":
        pixels = ((x * 0.5 + y * 0.5) * 65535).astype(np.uint16)
        Image.fromarray(pixels).save(path)
        return path
    channels = [((x * 255) + 0 * y).astype(np.uint8), ((y * 255) + 0 * x).astype(np.uint8)]
    channels.append((((x + y) * 127) % 255).astype(np.uint8))
    picture = Image.merge("RGB", [Image.fromarray(c) for c in channels])
    picture.save(path, format=fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}))
    return path


def measure(module: Path, photo: Path, at_once: int = 1) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(module), str(photo), str(at_once)], capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode != 0:
        return {"outcome": f"crashed ({done.stderr.strip().splitlines()[-1][:60] if done.stderr else done.returncode})"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small and middle photos only")
    parser.add_argument("--baseline-ref", default="main", help="git ref of the earlier image.py (default: main)")
    parser.add_argument("--at-once", type=int, default=8, help="concurrent reads of the 16-bit PNG (default: 8)")
    parser.add_argument(
        "--baseline-at-once", action="store_true", help="also the concurrent reads with the earlier code (GBs)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        baseline = scratch / "image_baseline.py"
        shown = subprocess.run(
            ["git", "show", f"{args.baseline_ref}:fashionflow/image.py"], capture_output=True, text=True, cwd=ROOT
        )
        baseline.write_text(shown.stdout) if shown.returncode == 0 else None
        modules = {"now": ROOT / "fashionflow" / "image.py"}
        if baseline.exists():
            modules[args.baseline_ref] = baseline
        rows = []
        for label, width, height, fmt, mode in PHOTOS:
            if args.quick and label not in QUICK:
                continue
            photo = make_photo(scratch, label, width, height, fmt, mode)
            row = {"photo": label, "file_mb": round(photo.stat().st_size / 2**20, 1), "pixels": width * height}
            for name, module in modules.items():
                row[name] = measure(module, photo)
            rows.append(row)
            _print_row(row, modules)
            if mode == "I;16" and args.at_once > 1:  # the case: several large 16-bit uploads at once
                row = {
                    "photo": f"{args.at_once} x {label} at once",
                    "file_mb": row["file_mb"],
                    "pixels": width * height,
                }
                for name, module in modules.items():
                    if name == "now" or args.baseline_at_once:
                        row[name] = measure(module, photo, args.at_once)
                    else:
                        row[name] = {"outcome": "not run (--baseline-at-once)"}
                rows.append(row)
                _print_row(row, modules)
            photo.unlink()

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "photo_memory.json").write_text(json.dumps(rows, indent=2))
    print(f"\nJSON: {RESULTS / 'photo_memory.json'}")


def _print_row(row: dict, modules: dict) -> None:
    if not hasattr(_print_row, "header"):
        _print_row.header = True
        columns = "".join(f" | {name}: peak MB, s, outcome" for name in modules)
        print(f"| photo | file MB{columns} |")
        print("| --- | ---" + " | ---" * len(modules) + " |")
    cells = []
    for name in modules:
        result = row[name]
        if result.get("outcome") == "read":
            cells.append(f"{result['peak_mb']:.0f} MB, {result['seconds']:.2f} s, read")
        else:
            cells.append(f"{result.get('peak_mb', 0):.0f} MB, {result['outcome']}")
    print(f"| {row['photo']} | {row['file_mb']} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
