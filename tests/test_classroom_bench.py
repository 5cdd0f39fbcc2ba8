"""The app benchmark's command line: names are checked, with a message, before anything runs."""

from __future__ import annotations

import pytest

from classroom import bench


def test_unknown_benchmark_exits_with_a_message(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["nonsense"])
    assert exc.value.code == 2
    assert "unknown benchmark 'nonsense'" in capsys.readouterr().err
