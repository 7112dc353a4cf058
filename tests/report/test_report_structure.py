"""The report's plumbing: section builders, figures drawn once while the report is built,
fixed figure margins, endpoint titles from the endpoint definitions, one palette."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from cartrial.cohort import load_cohort
from cartrial.report import figures as F
from cartrial.report.build import build_report
from cartrial.report.document import endpoint_title, time_axis_label
from cartrial.report.sections import SECTION_BUILDERS, SectionOutput
from cartrial.report.settings import ReportSettings, settings_from_mapping
from cartrial.report.writer import FigureDrawing, can_fork, figure_cost, share, write_report

NS7 = Path(__file__).resolve().parents[1] / "data" / "ns7car_like"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_every_section_builder_returns_a_typed_section():
    cohort = load_cohort(NS7)
    seen: list[str] = []
    report = build_report(
        cohort, ReportSettings(), on_figures=lambda figs: seen.extend(d.name for d in figs)
    )
    # the figures handed out section by section are the report's figures, in print order
    assert seen == [d.name for _, d in report.figures]
    assert len(set(seen)) == len(seen)
    from cartrial.report.build import build_context

    ctx = build_context(cohort, ReportSettings(), lambda _m: None)
    names = []
    for builder in SECTION_BUILDERS:
        out = builder(ctx)
        assert isinstance(out, SectionOutput), builder.__name__
        names += [t.name for t in out.tables]
    assert names == [t.name for t in report.tables]


def test_figures_drawn_while_building_equal_figures_drawn_after(tmp_path, monkeypatch):
    """The forked drawing during the build writes the same files, byte for byte, as the
    serial drawing after it (and every figure exactly once)."""
    if not can_fork(2):
        pytest.skip("no fork on this machine")
    cohort = load_cohort(NS7)
    drawing = FigureDrawing.beside(tmp_path / "early", ("png",))
    early = build_report(cohort, ReportSettings(), on_figures=drawing.add)
    assert drawing.jobs, "no child took a batch of figures during the build"
    write_report(early, tmp_path / "early", drawing=drawing)
    assert not drawing.folder.exists()  # moved into the report
    monkeypatch.setenv("CARTRIAL_SERIAL", "1")
    late = build_report(cohort, ReportSettings())
    write_report(late, tmp_path / "late")
    a = sorted(p.name for p in (tmp_path / "early" / "figures").iterdir())
    b = sorted(p.name for p in (tmp_path / "late" / "figures").iterdir())
    assert a == b == sorted(f"{d.name}.png" for _, d in early.figures)
    for name in a:
        assert (tmp_path / "early" / "figures" / name).read_bytes() == (
            tmp_path / "late" / "figures" / name
        ).read_bytes(), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


class _Fig:
    def __init__(self, n_axes: int) -> None:
        self.axes = [object()] * n_axes


class _Drawn:
    def __init__(self, name: str, n_axes: int) -> None:
        self.name, self.fig = name, _Fig(n_axes)


def test_share_balances_the_drawing_between_two_processes():
    figs = [
        _Drawn("km1", 1),
        _Drawn("panels", 19),
        _Drawn("km2", 1),
        _Drawn("forest", 1),
        _Drawn("two", 2),
    ]
    theirs, mine = share(figs, other_load=4.0)  # type: ignore[arg-type]
    assert sorted(d.name for d in theirs + mine) == sorted(d.name for d in figs)
    # the 19-panel figure (cost 10) goes alone to this process; the child has the docx
    assert [d.name for d in mine] == ["panels"]
    load_child = 4.0 + sum(figure_cost(d) for d in theirs)  # type: ignore[arg-type]
    assert load_child == 4.0 + 1 + 1 + 1 + 1.5
    # print order kept within a share
    assert [d.name for d in theirs] == ["km1", "km2", "forest", "two"]


def test_fixed_layout_places_the_grid_by_inches():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 5.0), layout="constrained")
    axes = fig.subplots(2, 3, squeeze=False)
    F.fixed_layout(fig, left=1.0, right=0.5, top=0.5, bottom=1.0, wspace=0.5, hspace=1.0)
    assert fig.get_layout_engine().__class__.__name__ != "ConstrainedLayoutEngine"
    x0, y0, w, h = axes[1, 0].get_position().bounds  # bottom-left panel
    assert x0 * 10 == pytest.approx(1.0) and y0 * 5 == pytest.approx(1.0)
    # three columns of (10 - 1 - 0.5 - 2 × 0.5) / 3 inches, two rows of (5 - 1.5 - 1) / 2
    assert w * 10 == pytest.approx(7.5 / 3) and h * 5 == pytest.approx(1.25)
    right = axes[0, 2].get_position()
    assert right.x1 * 10 == pytest.approx(9.5) and right.y1 * 5 == pytest.approx(4.5)


def test_wide_figures_are_capped_in_pixels(tmp_path):
    from matplotlib.figure import Figure

    wide = F.Drawn("wide", "Wide", Figure(figsize=(19.2, 10.8)))
    wide.fig.add_subplot().plot([0, 1], [0, 1])
    narrow = F.Drawn("narrow", "Narrow", Figure(figsize=(6.4, 4.0)))
    narrow.fig.add_subplot().plot([0, 1], [0, 1])
    F.save(wide, tmp_path)
    F.save(narrow, tmp_path)
    assert _png_size(tmp_path / "wide.png") == (F.MAX_PNG_PX, round(10.8 * F.MAX_PNG_PX / 19.2))
    assert _png_size(tmp_path / "narrow.png") == (round(6.4 * F.PNG_DPI), 4 * F.PNG_DPI)


def test_endpoint_titles_come_from_the_endpoint_definitions():
    from cartrial.endpoints.definitions import ENDPOINTS
    from cartrial.endpoints.populations import POPULATIONS

    for name, d in ENDPOINTS.items():
        title = endpoint_title(name)
        assert title.startswith(d.label)
        if d.population != "SAF":  # the population is named from its own label
            words = POPULATIONS[d.population].label.lower().split(" (")[0]
            assert words in title.lower(), (name, title)
        else:
            assert title == d.label
    assert time_axis_label("DOR", "months") == "Time since first response (months)"
    assert time_axis_label("OS", "days") == "Time since CAR-T infusion (days)"
    user = settings_from_mapping(
        {
            "endpoint_definitions": {
                "TTR": {
                    "label": "Time to response",
                    "text": "Infusion to first response.",
                    "events": ["response"],
                    "origin": "first_response",
                    "population": "RESP",
                }
            }
        }
    )
    assert endpoint_title("TTR", user) == "Time to response (responders)"
    assert time_axis_label("TTR", "months", user) == "Time since first response (months)"
    assert endpoint_title("XYZ") == "XYZ"


def test_palette_imports_without_matplotlib():
    code = (
        "import sys; from cartrial.report.palette import PALETTE, BLUE; "
        "assert PALETTE[0] == BLUE and len(set(PALETTE)) == 8; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    # the figures draw with the same palette
    assert F.PALETTE is __import__("cartrial.report.palette", fromlist=["PALETTE"]).PALETTE


def test_collector_settings_change_only_in_the_command_process():
    """Inside another program (this test run) the report command leaves the garbage
    collector alone; the ``cartrial`` process itself is recognised by its main module."""
    import gc

    from cartrial.cli.report import _own_process, _tune_collector

    before = gc.get_threshold(), gc.get_freeze_count()
    assert not _own_process()
    _tune_collector()
    _tune_collector(finished=True)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
    code = (
        "import runpy, sys; sys.argv = ['cartrial', '--help']\n"
        "import cartrial.cli.report as R\n"
        "sys.modules['__main__'].__spec__ = type('S', (), {'name': 'cartrial.__main__'})()\n"
        "assert R._own_process()\n"
        "R._tune_collector(); import gc; assert gc.get_threshold()[0] == 20000\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
