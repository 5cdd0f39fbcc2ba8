"""Training data: 2-D toy distributions, bundled MNIST digits and user CSV points.

Every dataset samples on the device it lives on with a caller-owned
`torch.Generator`, so concurrent runs never share a global RNG. The 2-D toys
expose their mode centres and standard deviation so `metrics.mode_coverage`
can score a generator the way VEEGAN (Srivastava et al., 2017) and PacGAN
(Lin et al., 2018) do.

Not here: models, losses or any plotting.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import torch

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DIGITS_FILE = ASSETS_DIR / "digits_5k.npz"

# Limits for user-uploaded CSV files of 2-D points.
CSV_MAX_BYTES = 2_000_000
CSV_MIN_ROWS = 16
CSV_MAX_ROWS = 50_000
CSV_MAX_ABS = 1e6


class DataError(ValueError):
    """A dataset cannot be built; the message says what to fix."""


class PointDataset:
    """2-D points: a Gaussian mixture (`modes`, `sigma`) or a fixed point cloud.

    `modes`, `sigma`, `points` and `bounds` are in data units. `sample()` returns
    *model units*: data divided by `scale` (the largest |coordinate|), so every toy
    reaches the networks in [-1, 1] whatever its size — standardising inputs, as for
    any network. `Engine` multiplies by `scale` again for plots and metrics.
    """

    is_image = False

    def __init__(
        self,
        name: str,
        title: str,
        *,
        modes: torch.Tensor | None = None,
        sigma: float = 0.0,
        points: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        if (modes is None) == (points is None):
            raise ValueError("give exactly one of `modes` or `points`")
        self.name = name
        self.title = title
        self.sigma = float(sigma)
        self.device = torch.device(device)
        self.modes = None if modes is None else modes.to(self.device, torch.float32)
        self.points = None if points is None else points.to(self.device, torch.float32)
        ref = self.modes if self.modes is not None else self.points
        self.scale = max(float(ref.abs().max()), 1e-6)
        # Pre-divided copies: sampling in model units costs no extra op per step.
        self.centres = ref / self.scale  # what `sample` picks from, (M, 2) in model units
        self.noise_std = self.sigma / self.scale  # the mixture's σ in model units (0.0 for points)
        self._n_centres = len(self.centres)
        lo, hi = ref.min(0).values, ref.max(0).values
        pad = 3 * self.sigma + 0.15 * float((hi - lo).max())
        # Plot bounds (x0, x1, y0, y1): square, centred, with a margin.
        centre = (lo + hi) / 2
        half = float((hi - lo).max()) / 2 + pad
        self.bounds = (
            float(centre[0]) - half,
            float(centre[0]) + half,
            float(centre[1]) - half,
            float(centre[1]) + half,
        )

    def sample(self, n: int, generator: torch.Generator, out: torch.Tensor | None = None) -> torch.Tensor:
        """Draw `n` points (n, 2) in model units (data / scale); writes into `out` when given."""
        if out is None:
            out = torch.empty(n, 2, device=self.device)
        idx = torch.empty(n, dtype=torch.long, device=self.device)
        noise = None if self.modes is None else torch.empty(n, 2, device=self.device)
        self.draw(generator, idx, noise)
        torch.index_select(self.centres, 0, idx, out=out)
        if noise is not None:
            out.add_(noise, alpha=self.noise_std)
        return out

    def draw(self, generator: torch.Generator, index_out: torch.Tensor, noise_out: torch.Tensor | None) -> None:
        """The random part of `sample`, in its order, into caller buffers: indices into `centres`
        (n,), then, for a mixture, standard normal noise (n, 2). A sample is
        `centres[index] + noise_std * noise`; a cohort draws each member's with its own
        generator and computes all members' samples at once."""
        index_out.random_(0, self._n_centres, generator=generator)  # torch.randint's draws
        if self.modes is not None:
            noise_out.normal_(generator=generator)  # torch.randn's draws


class DigitDataset:
    """MNIST digits as (N, 1, 28, 28) float tensors in [-1, 1] (Tanh range)."""

    is_image = True
    modes = None
    sigma = 0.0
    scale = 1.0  # pixels are already in [-1, 1]
    bounds = (-1.0, 1.0, -1.0, 1.0)

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, name: str, title: str,
                 device: torch.device | str = "cpu") -> None:
        self.name = name
        self.title = title
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)

    def sample(self, n: int, generator: torch.Generator, out: torch.Tensor | None = None) -> torch.Tensor:
        idx = torch.randint(len(self.images), (n,), device=self.device, generator=generator)
        if out is None:
            return self.images.index_select(0, idx)
        return torch.index_select(self.images, 0, idx, out=out)


def _ring(n_modes: int, radius: float) -> torch.Tensor:
    angles = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    return (radius * torch.stack([torch.cos(angles), torch.sin(angles)], 1)).float()


def _grid() -> torch.Tensor:
    # Centres (-4 + 2i, -4 + 2j), i, j in 0..4, as in VEEGAN/PacGAN.
    ticks = torch.arange(-4.0, 5.0, 2.0)
    return torch.cartesian_prod(ticks, ticks)


def _spiral(n: int = 4000, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.sqrt(torch.rand(n, generator=g)) * 3 * math.pi  # denser near the centre
    r = t / (3 * math.pi) * 2.0
    pts = torch.stack([r * torch.cos(t), r * torch.sin(t)], 1)
    return pts + 0.04 * torch.randn(n, 2, generator=g)


def _moons(n: int = 4000, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    half = n // 2
    t = torch.rand(half, generator=g) * math.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    pts = torch.cat([upper, lower]) - torch.tensor([0.5, 0.25])
    return pts + 0.06 * torch.randn(len(pts), 2, generator=g)


TOY_DATASETS: dict[str, str] = {
    "ring8": "Ring of 8 Gaussians (σ=0.01, benchmark)",
    "ring8_wide": "Ring of 8 Gaussians (σ=0.05, classroom)",
    "grid25": "5×5 grid of Gaussians (σ=0.05)",
    "spiral": "Spiral",
    "moons": "Two moons",
}
DATASET_NAMES = (*TOY_DATASETS, "digits")
# Full MNIST / Fashion-MNIST through torchvision: only when asked for, and only online.
DOWNLOADABLE = {"mnist_full": "mnist", "fashion": "fashion"}
IMAGE_DATASETS = ("digits", *DOWNLOADABLE)
DIGIT_DATASETS = ("digits", "mnist_full")  # what the bundled digit classifier can score


def make_toy(name: str, device: torch.device | str = "cpu") -> PointDataset:
    """Build one of `TOY_DATASETS` on `device`."""
    title = TOY_DATASETS.get(name)
    if title is None:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    if name == "ring8":
        return PointDataset(name, title, modes=_ring(8, 1.0), sigma=0.01, device=device)
    if name == "ring8_wide":
        return PointDataset(name, title, modes=_ring(8, 2.0), sigma=0.05, device=device)
    if name == "grid25":
        return PointDataset(name, title, modes=_grid(), sigma=0.05, device=device)
    if name == "spiral":
        return PointDataset(name, title, points=_spiral(), device=device)
    return PointDataset(name, title, points=_moons(), device=device)


def load_digits(device: torch.device | str = "cpu", path: Path = DIGITS_FILE) -> DigitDataset:
    """The bundled 5,000 MNIST digits (see assets/README.md for provenance)."""
    if not path.exists():
        raise DataError(
            f"bundled digits not found at {path}; rebuild them with "
            "`python assets/build_digits.py` (see assets/README.md)"
        )
    with np.load(path) as f:
        images = torch.from_numpy(f["images"].astype(np.float32))
        labels = torch.from_numpy(f["labels"].astype(np.int64))
    images = (images / 127.5 - 1.0).reshape(-1, 1, 28, 28)
    return DigitDataset(images, labels, "digits", "MNIST digits (5k bundled)", device)


def load_torchvision_mnist(kind: str = "mnist", root: str = "~/.cache/gan_classroom",
                           device: torch.device | str = "cpu") -> DigitDataset:
    """Full MNIST / Fashion-MNIST via torchvision, only when asked and online."""
    import torchvision  # local import: optional path, keeps import of gan_core light

    cls = {"mnist": torchvision.datasets.MNIST, "fashion": torchvision.datasets.FashionMNIST}.get(kind)
    if cls is None:
        raise DataError(f"unknown torchvision dataset {kind!r}; choose 'mnist' or 'fashion'")
    try:
        ds = cls(Path(root).expanduser(), train=True, download=True)
    except Exception as exc:  # network errors come in many types
        raise DataError(
            f"could not download {kind} with torchvision ({exc.__class__.__name__}: {exc}); "
            "the bundled 'digits' dataset works offline"
        ) from exc
    images = (ds.data.float() / 127.5 - 1.0).reshape(-1, 1, 28, 28)
    return DigitDataset(images, ds.targets.clone(), kind, kind, device)


def parse_points_csv(data: bytes | str, *, max_bytes: int = CSV_MAX_BYTES) -> torch.Tensor:
    """Validate a CSV of 2-D points and return it as an (N, 2) float tensor.

    Accepts an optional header row, comma/semicolon/tab delimiters and exactly
    two numeric columns. Every problem raises `DataError` naming the line.
    The points are standardised (zero mean, unit max spread) so any units work.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > max_bytes:
        raise DataError(f"file is {len(data):,} bytes; the limit is {max_bytes:,} bytes")
    if data[:2] == b"\x1f\x8b":
        raise DataError("file looks gzip-compressed; upload a plain-text .csv")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"file is not UTF-8 text (byte {exc.start}); upload a plain-text .csv") from exc
    if "\x00" in text:
        raise DataError("file contains NUL bytes; upload a plain-text .csv")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    rows: list[tuple[float, float]] = []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    for line_no, row in enumerate(reader, start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if len(cells) != 2:
            raise DataError(f"line {line_no}: expected 2 columns (x, y), found {len(cells)}")
        try:
            x, y = float(cells[0]), float(cells[1])
        except ValueError:
            if line_no == 1 and not rows:
                continue  # header row
            raise DataError(f"line {line_no}: {cells[0]!r}, {cells[1]!r} is not a pair of numbers") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise DataError(f"line {line_no}: values must be finite numbers, got {cells[0]!r}, {cells[1]!r}")
        if abs(x) > CSV_MAX_ABS or abs(y) > CSV_MAX_ABS:
            raise DataError(f"line {line_no}: |value| must be at most {CSV_MAX_ABS:g}")
        rows.append((x, y))
        if len(rows) > CSV_MAX_ROWS:
            raise DataError(f"more than {CSV_MAX_ROWS:,} points; subsample the file")
    if len(rows) < CSV_MIN_ROWS:
        raise DataError(f"found {len(rows)} points; at least {CSV_MIN_ROWS} are needed")
    return torch.from_numpy(standardise_points(np.array(rows, dtype=np.float64)))


def standardise_points(points: np.ndarray) -> np.ndarray:
    """(N, 2) points centred on their mean and scaled so the largest |coordinate| is 2, as
    float32: any units (a CSV's, a drawing's pixels) reach the same range. Raises `DataError`
    when all points are identical."""
    pts = points - points.mean(0)
    spread = float(np.abs(pts).max())
    if spread == 0.0:
        raise DataError("all points are identical; a GAN needs a spread of points")
    return (pts * (2.0 / spread)).astype(np.float32)


def csv_dataset(data: bytes | str, name: str = "csv", device: torch.device | str = "cpu") -> PointDataset:
    pts = parse_points_csv(data)
    return PointDataset(name, f"Uploaded points ({len(pts):,})", points=pts, device=device)


def make_dataset(name: str, device: torch.device | str = "cpu", csv_bytes: bytes | None = None):
    """Any dataset by name: a toy, 'digits' or 'csv' (needs `csv_bytes`)."""
    if name == "digits":
        return load_digits(device)
    if name in DOWNLOADABLE:
        return load_torchvision_mnist(DOWNLOADABLE[name], device=device)
    if name == "csv":
        if csv_bytes is None:
            raise DataError("dataset 'csv' needs an uploaded file of 2-D points")
        return csv_dataset(csv_bytes, device=device)
    return make_toy(name, device)
