"""Peak memory and time per epoch on a synthetic set as large as PathMNIST at 224 px (issue 15): the
set is read from disk a batch at a time (neurocomp.data.storage), so peak RSS should stay far below the
size of its images.

Writes ``FOLDER/pathmnist224-synthetic.npz`` (MedMNIST layout, 89,996 / 10,004 / 7,180 RGB images of
224 x 224 by default: 16.2 GB; the uncompressed copy beside it takes as much again), then runs
``neurocomp run`` on it in a child process under ``/usr/bin/time -v`` and prints the peak RSS, the
time of the first load (the copy is made) and the epoch time from the run record.

    python benchmarks/large_dataset.py --folder /tmp/large [--scale 0.1] [--epochs 1]

The default model is a small strided CNN (about 10k parameters), so that what is measured is the data
path: a default-sized MLP on 150,528 inputs would hold 154M parameters and their Adam state.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

PATHMNIST_224 = {"train": 89_996, "val": 10_004, "test": 7_180}
SIDE, CLASSES, CHUNK = 224, 9, 1_000


def write_member(archive: zipfile.ZipFile, name: str, array_shape: tuple[int, ...], chunks) -> None:
    """Stream ``chunks`` (uint8 arrays whose rows make ``array_shape``) into ``name``.npy of ``archive``."""
    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_2_0(member, {"descr": "|u1", "fortran_order": False, "shape": array_shape})
        for chunk in chunks:
            member.write(np.ascontiguousarray(chunk, dtype=np.uint8).tobytes())


def make_set(path: Path, sizes: dict[str, int], seed: int = 0) -> None:
    """A MedMNIST-layout .npz of RGB images whose class shifts their brightness, written in chunks
    (stored, not compressed: random pixels do not compress, and writing stays at disk speed)."""
    rng = np.random.default_rng(seed)
    labels = {split: rng.integers(0, CLASSES, size=(n, 1)).astype(np.uint8) for split, n in sizes.items()}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for split, n in sizes.items():
            def chunks(split=split, n=n):
                for start in range(0, n, CHUNK):
                    rows = labels[split][start:start + CHUNK, 0]
                    noise = rng.integers(0, 128, size=(len(rows), SIDE, SIDE, 3), dtype=np.uint8)
                    yield noise + (rows * 14).astype(np.uint8)[:, None, None, None]

            write_member(archive, f"{split}_images", (n, SIDE, SIDE, 3), chunks())
            write_member(archive, f"{split}_labels", (n, 1), [labels[split]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True, help="where the .npz and its uncompressed copy go")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of PathMNIST-224's split sizes")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--set", nargs="*", default=["model.channels=[8,16]", "model.strides=[2]", "model.pools=[4]"],
                        help="config overrides for the run (default: a small strided CNN)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {split: max(2 * CLASSES, round(n * args.scale)) for split, n in PATHMNIST_224.items()}
    path = folder / f"pathmnist224-synthetic-{sum(sizes.values())}.npz"
    if not path.exists():  # written under another name first: a killed run leaves no half file behind
        started = time.perf_counter()
        partial = path.with_suffix(".partial")
        make_set(partial, sizes)
        partial.replace(path)
        print(f"wrote {path}: {path.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - started:.0f} s")
    image_bytes = sum(sizes.values()) * SIDE * SIDE * 3
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "neurocomp", "run", str(path), "--model", args.model,
               "--epochs", str(args.epochs), "--threads", str(args.threads), "--out", str(folder / "results"), "--quiet",
               *(part for assignment in args.set for part in ("--set", assignment))]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"neurocomp run failed:\n{done.stderr[-3000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    record = json.loads(max((folder / "results" / "runs").glob("*/run.json"), key=lambda p: p.stat().st_mtime).read_text())
    print(json.dumps({
        "images": sizes, "image_gb": round(image_bytes / 1e9, 2), "storage": record["dataset"]["storage"],
        "peak_rss_gb": round(peak_kb * 1024 / 1e9, 3), "peak_rss_over_images": round(peak_kb * 1024 / image_bytes, 4),
        "wall_s": round(wall, 1), "epoch_time_s": round(record["epoch_time_s"], 1), "run_wall_time_s": round(record["wall_time_s"], 1),
        "model": args.model, "trainable_params": record["params"]["trainable"], "test_auc": record["metrics"]["test"]["auc"],
    }, indent=1))


if __name__ == "__main__":
    main()
