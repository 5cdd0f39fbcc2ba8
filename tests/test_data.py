"""Tests for gan_core/data.py: toy mixtures, bundled digits, CSV validation."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest
import torch

from gan_core.data import (
    CSV_MAX_BYTES,
    CSV_MAX_ROWS,
    CSV_MIN_ROWS,
    DIGITS_FILE,
    DataError,
    PointDataset,
    csv_dataset,
    load_digits,
    make_dataset,
    make_toy,
    parse_points_csv,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def csv_text(n: int = 20, delimiter: str = ",", header: str | None = None) -> str:
    lines = [header] if header else []
    lines += [f"{i}{delimiter}{(i * 7) % 5 - 2.5}" for i in range(n)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- toy mixtures

def test_ring8_modes_are_eight_points_on_the_unit_circle_45_degrees_apart():
    ds = make_toy("ring8")
    modes = ds.modes.double()
    assert modes.shape == (8, 2) and ds.sigma == 0.01
    assert torch.allclose(modes.norm(dim=1), torch.ones(8, dtype=torch.float64), atol=1e-6)
    angles = torch.atan2(modes[:, 1], modes[:, 0]) % (2 * math.pi)
    expected = torch.arange(8, dtype=torch.float64) * math.pi / 4
    assert torch.allclose(angles.sort().values, expected, atol=1e-6)


def test_ring8_wide_has_radius_two():
    ds = make_toy("ring8_wide")
    assert ds.sigma == 0.05
    assert torch.allclose(ds.modes.norm(dim=1), torch.full((8,), 2.0), atol=1e-6)


def test_grid25_centres_are_minus_four_to_four_in_steps_of_two():
    ds = make_toy("grid25")
    got = sorted(map(tuple, ds.modes.tolist()))
    expected = sorted((float(x), float(y)) for x in range(-4, 5, 2) for y in range(-4, 5, 2))
    assert got == expected and ds.sigma == 0.05


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_samples_have_std_sigma_around_their_mode_and_hit_modes_uniformly(name):
    ds = make_toy(name)
    x = ds.sample(20_000, gen(1)).double() * ds.scale  # model units → data units
    d = torch.cdist(x, ds.modes.double())
    nearest = d.argmin(1)
    residual = x - ds.modes.double()[nearest]
    assert residual.mean(0).abs().max() < 0.05 * ds.sigma * 3
    assert residual.std(0).sub(ds.sigma).abs().max() < 0.03 * ds.sigma
    share = torch.bincount(nearest, minlength=len(ds.modes)).double() / len(x)
    assert share.sub(1 / len(ds.modes)).abs().max() < 0.02


def test_sampling_is_reproducible_per_generator_and_never_touches_global_rng():
    ds = make_toy("ring8")
    global_state = torch.random.get_rng_state()
    a, b, c = ds.sample(64, gen(3)), ds.sample(64, gen(3)), ds.sample(64, gen(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(torch.random.get_rng_state(), global_state)


def test_sample_writes_into_out_buffer():
    ds = make_toy("grid25")
    out = torch.full((32, 2), float("nan"))
    ret = ds.sample(32, gen(0), out=out)
    assert ret.data_ptr() == out.data_ptr()
    assert torch.equal(out, ds.sample(32, gen(0)))


@pytest.mark.parametrize("name", ["ring8", "grid25", "spiral"])
def test_draw_then_centres_plus_scaled_noise_is_sample(name):
    """What a cohort does for many runs at once: the draws with each run's generator, then the arithmetic."""
    ds = make_toy(name)
    index, noise = torch.empty(64, dtype=torch.long), torch.full((64, 2), float("nan"))
    rng = gen(5)
    ds.draw(rng, index, noise)
    x = ds.centres[index]
    if ds.modes is not None:
        x = torch.add(x, noise, alpha=ds.noise_std)
    else:
        assert noise.isnan().all()  # a point cloud draws no noise
    again = gen(5)
    assert torch.equal(x, ds.sample(64, again)) and torch.equal(rng.get_state(), again.get_state())


@pytest.mark.parametrize("name", ["spiral", "moons"])
def test_point_cloud_toys_sample_from_their_fixed_points(name):
    ds = make_toy(name)
    assert ds.modes is None and ds.points.shape[1] == 2 and len(ds.points) >= 1000
    x = ds.sample(50, gen(0))
    stored = ds.points / ds.scale  # samples come in model units
    assert (x[:, None, :] == stored[None]).all(-1).any(1).all()  # every sample is a stored point


@pytest.mark.parametrize("name", ["ring8", "ring8_wide", "grid25", "spiral", "moons"])
def test_bounds_are_square_and_contain_the_data_with_a_margin(name):
    ds = make_toy(name)
    x0, x1, y0, y1 = ds.bounds
    assert x1 - x0 == pytest.approx(y1 - y0)
    pts = ds.sample(2000, gen(0)) * ds.scale
    assert x0 < pts[:, 0].min() and pts[:, 0].max() < x1
    assert y0 < pts[:, 1].min() and pts[:, 1].max() < y1


def test_point_dataset_needs_exactly_one_of_modes_or_points():
    with pytest.raises(ValueError, match="exactly one"):
        PointDataset("x", "x")
    with pytest.raises(ValueError, match="exactly one"):
        PointDataset("x", "x", modes=torch.zeros(1, 2), points=torch.zeros(3, 2))


def test_unknown_toy_and_csv_without_bytes_raise_data_error():
    with pytest.raises(DataError, match="unknown dataset 'swiss'.*ring8"):
        make_toy("swiss")
    with pytest.raises(DataError, match="needs an uploaded file"):
        make_dataset("csv")


# ---------------------------------------------------------------- digits

def test_missing_digits_file_says_how_to_rebuild(tmp_path):
    with pytest.raises(DataError, match="build_digits.py"):
        load_digits(path=tmp_path / "nope.npz")


@pytest.mark.skipif(not DIGITS_FILE.exists(), reason=f"{DIGITS_FILE} not built yet (assets/build_digits.py)")
def test_bundled_digits_load_in_tanh_range_with_all_ten_labels():
    ds = make_dataset("digits")
    assert ds.is_image
    n = len(ds.images)
    assert ds.images.shape == (n, 1, 28, 28) and n == len(ds.labels) == 5000
    assert ds.images.dtype == torch.float32
    assert ds.images.min() == -1.0 and ds.images.max() == 1.0
    assert set(ds.labels.tolist()) == set(range(10))
    batch = ds.sample(8, gen(0))
    assert batch.shape == (8, 1, 28, 28)
    assert torch.equal(batch, ds.sample(8, gen(0)))
    out = torch.empty(8, 1, 28, 28)
    assert ds.sample(8, gen(0), out=out).data_ptr() == out.data_ptr() and torch.equal(out, batch)


# ---------------------------------------------------------------- CSV upload

def test_csv_is_parsed_centred_and_scaled_to_max_abs_two():
    raw = np.array([[i, (i * 7) % 5 - 2.5] for i in range(20)], dtype=np.float64)
    pts = parse_points_csv(csv_text(20)).double().numpy()
    centred = raw - raw.mean(0)
    np.testing.assert_allclose(pts, centred * 2 / np.abs(centred).max(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_delimiters_and_header_row_are_accepted(delimiter):
    plain = parse_points_csv(csv_text(20, ","))
    assert torch.equal(parse_points_csv(csv_text(20, delimiter)), plain)
    with_header = csv_text(20, delimiter, header=f"x{delimiter}y")
    assert torch.equal(parse_points_csv(with_header), plain)


def test_csv_bom_blank_lines_and_bytes_input():
    text = "\ufeffx,y\n\n" + csv_text(20).replace("\n", "\n\n")
    assert torch.equal(parse_points_csv(text.encode("utf-8")), parse_points_csv(csv_text(20)))


def csv_error(data, **kw) -> str:
    with pytest.raises(DataError) as info:
        parse_points_csv(data, **kw)
    return str(info.value)


def test_csv_wrong_column_count_names_the_line():
    lines = csv_text(20).splitlines()
    lines[2] = "1,2,3"
    assert csv_error("\n".join(lines)) == "line 3: expected 2 columns (x, y), found 3"
    lines[2] = "7"
    assert "line 3" in csv_error("\n".join(lines)) and "found 1" in csv_error("\n".join(lines))


def test_csv_non_numeric_row_after_the_first_names_the_line():
    lines = csv_text(20).splitlines()
    lines[3] = "abc,2"
    msg = csv_error("\n".join(lines))
    assert msg.startswith("line 4:") and "'abc'" in msg and "not a pair of numbers" in msg


def test_csv_second_header_like_row_is_an_error():
    msg = csv_error("x,y\nx,y\n" + csv_text(20))
    assert msg.startswith("line 2:")


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "NaN"])
def test_csv_non_finite_values_are_rejected(bad):
    lines = csv_text(20).splitlines()
    lines[5] = f"1,{bad}"
    msg = csv_error("\n".join(lines))
    assert msg.startswith("line 6:") and "finite" in msg


def test_csv_huge_values_are_rejected():
    lines = csv_text(20).splitlines()
    lines[0] = "1e7,0"
    assert "line 1: |value| must be at most" in csv_error("\n".join(lines))


def test_csv_too_few_rows():
    msg = csv_error(csv_text(CSV_MIN_ROWS - 1))
    assert msg == f"found {CSV_MIN_ROWS - 1} points; at least {CSV_MIN_ROWS} are needed"
    assert len(parse_points_csv(csv_text(CSV_MIN_ROWS))) == CSV_MIN_ROWS


def test_csv_too_many_rows():
    body = "".join(f"{i % 97},{i % 89}\n" for i in range(CSV_MAX_ROWS + 1))
    assert "more than 50,000 points" in csv_error(body)
    assert len(parse_points_csv(body[: body.rindex("\n", 0, len(body) - 1) + 1])) == CSV_MAX_ROWS


def test_csv_oversized_file_is_rejected_before_parsing():
    assert "limit is 100 bytes" in csv_error(csv_text(20), max_bytes=100)
    big = b"1,2\n" * (CSV_MAX_BYTES // 4 + 1)
    assert f"limit is {CSV_MAX_BYTES:,} bytes" in csv_error(big)


def test_csv_binary_files_are_rejected():
    assert "gzip" in csv_error(gzip.compress(csv_text(20).encode()))
    assert "NUL" in csv_error(csv_text(20).encode() + b"\x00\x00")
    assert "not UTF-8" in csv_error(b"1,2\n\xff\xfe\x80,3\n" + csv_text(20).encode())
    assert "not UTF-8" in csv_error(bytes(range(256)) * 4)


def test_csv_identical_points_are_rejected():
    assert "identical" in csv_error("3,4\n" * 20)


def test_csv_dataset_wraps_points():
    ds = csv_dataset(csv_text(20))
    assert ds.points.shape == (20, 2) and ds.modes is None and "20" in ds.title
    assert make_dataset("csv", csv_bytes=csv_text(20).encode()).points.shape == (20, 2)


@pytest.mark.parametrize("name", ["ring8", "ring8_wide", "grid25", "spiral", "moons"])
def test_samples_reach_the_networks_standardised_to_unit_range(name):
    ds = make_toy(name)
    pts = ds.sample(5000, gen(0))
    assert 0.9 < float(pts.abs().max()) < 1.0 + 4 * ds.sigma / ds.scale + 1e-6
    if name == "grid25":
        assert ds.scale == 4.0


@pytest.mark.parametrize("name", ["mnist_full", "fashion"])
def test_torchvision_datasets_fail_offline_with_a_clear_message(name, monkeypatch, tmp_path):
    import torchvision

    from gan_core.data import DataError, make_dataset

    def offline(*args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(DataError, match="could not download .*bundled 'digits' dataset works offline"):
        make_dataset(name)


def test_torchvision_datasets_are_images_in_the_config():
    from gan_core.config import TrainConfig, default_config

    assert TrainConfig(dataset="fashion").is_image
    assert default_config("mnist_full").z_dim == default_config("digits").z_dim
