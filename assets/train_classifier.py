"""Rebuild `assets/digit_classifier.safetensors` from `assets/digits_5k.npz`.

Trains `gan_core.classifier.DigitClassifier` on the first 4,500 bundled digits
(the npz is already shuffled) with random ±2 px shifts, and reports accuracy
on the last 500. Seeded and single-process; about 12 s on 2 idle CPU cores.

    python assets/train_classifier.py

Weights are saved with safetensors (never pickle) with the test accuracy as
the file's only metadata key (safetensors writes metadata keys in hash order,
so a second key would make the sha256 vary from run to run). Training is
bitwise reproducible for a given torch build and CPU; copy the printed
figures into assets/README.md.

Not here: the scores that use the classifier (gan_core/classifier.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from gan_core.classifier import CLASSIFIER_FILE, DigitClassifier  # noqa: E402
from gan_core.data import load_digits  # noqa: E402

N_TRAIN = 4500
SEED = 0


def random_shift(x: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Translate each image (N, 1, 28, 28) by up to ±max_shift px, filling with background (-1)."""
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    offsets = torch.randint(0, 2 * max_shift + 1, (len(x), 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy:dy + 28, dx:dx + 28] for i, (dy, dx) in enumerate(offsets)])


@torch.inference_mode()
def accuracy(model: DigitClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    logits, _ = model.eval()(images)
    return float((logits.argmax(1) == labels).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--out", type=Path, default=CLASSIFIER_FILE)
    args = parser.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    digits = load_digits()
    x_train, y_train = digits.images[:N_TRAIN], digits.labels[:N_TRAIN]
    x_test, y_test = digits.images[N_TRAIN:], digits.labels[N_TRAIN:]

    model = DigitClassifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = -(-N_TRAIN // args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=args.epochs * steps_per_epoch)

    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(N_TRAIN, generator=gen)
        total_loss = 0.0
        for idx in order.split(args.batch_size):
            logits, _ = model(random_shift(x_train[idx], gen))
            loss = F.cross_entropy(logits, y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(idx)
        print(f"epoch {epoch + 1:2d}  loss {total_loss / N_TRAIN:.4f}  test acc {accuracy(model, x_test, y_test):.4f}")
    train_seconds = time.perf_counter() - start

    test_acc = accuracy(model, x_test, y_test)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, args.out, metadata={"test_accuracy": f"{test_acc:.4f}"})
    print(json.dumps({
        "file": str(args.out),
        "bytes": args.out.stat().st_size,
        "sha256": hashlib.sha256(args.out.read_bytes()).hexdigest(),
        "test_accuracy": round(test_acc, 4),
        "train_seconds": round(train_seconds, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
