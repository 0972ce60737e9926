"""Runs PySceneDetect 0.7.2 at defaults on one video, in the benchmark venv (.venv-bench), and prints JSON:
cut times in seconds (scene starts after the first) and the CPU seconds it used."""

import json
import sys
import time

from scenedetect import AdaptiveDetector, ContentDetector, detect

DETECTORS = {"content": ContentDetector, "adaptive": AdaptiveDetector}


def main() -> None:
    path, name = sys.argv[1], sys.argv[2]
    t0 = time.process_time()
    scenes = detect(path, DETECTORS[name]())
    cpu = time.process_time() - t0
    cuts = [start.get_seconds() for start, _ in scenes[1:]]
    print(json.dumps({"cuts_s": cuts, "cpu_s": cpu}))


if __name__ == "__main__":
    main()
