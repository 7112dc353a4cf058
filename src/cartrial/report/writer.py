"""Writing a built report: the folder written atomically (a temporary folder beside OUTDIR,
moved into place at the end, so a failure leaves nothing half-written), each figure drawn
once to PNG (half of them by a forked image worker), the CSV tables, tables.docx,
report.pdf, settings.yaml and index.html. Reads only the document model."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from cartrial._folders import swap_into_place
from cartrial.report import figures as F
from cartrial.report.document import SYNTHETIC_LABEL, Progress, Report
from cartrial.report.docx_tables import write_docx
from cartrial.report.pdf import write_pdf
from cartrial.report.render import render_html

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from cartrial.report.figures import Drawn


def _noop(_msg: str) -> None:
    return None


def check_target(target: Path, overwrite: bool) -> None:
    """Refuse a non-empty existing OUTDIR unless ``overwrite`` (raises FileExistsError)."""
    if target.exists():
        if not target.is_dir():
            raise FileExistsError(f"{target} exists and is not a folder")
        if any(target.iterdir()) and not overwrite:
            raise FileExistsError(
                f"{target} exists and is not empty; use --overwrite to replace it"
            )


def write_csv(df: pd.DataFrame, path: Path, synthetic: bool) -> None:
    """A table as CSV; a synthetic cohort's tables start with a ``# SYNTHETIC DATA`` line."""

    with open(path, "w", encoding="utf-8", newline="") as fh:
        if synthetic:
            fh.write(f"# {SYNTHETIC_LABEL}\n")
        df.to_csv(fh, index=False, lineterminator="\n")


def can_fork(n_figures: int = 2) -> bool:
    """Whether figures may be drawn in a forked child: only where ``fork`` exists (Linux),
    with more than one CPU and at least ``n_figures`` ≥ 1 figure, unless CARTRIAL_SERIAL is
    set, and never once JAX is loaded (the population kinetic model): JAX runs threads, and
    a fork of a threaded process can deadlock."""
    import multiprocessing as mp
    import sys

    return bool(
        n_figures >= 1
        and sys.platform.startswith("linux")
        and "fork" in mp.get_all_start_methods()
        and (os.cpu_count() or 1) >= 2
        and not os.environ.get("CARTRIAL_SERIAL")
        and "jax" not in sys.modules
    )


def figure_cost(drawn: Drawn) -> float:
    """Relative drawing time of a figure (one axes ≈ 1; each further panel ≈ 0.5), to
    share the drawing between two processes."""
    return 1.0 + 0.5 * max(len(drawn.fig.axes) - 1, 0)


#: the cost of writing tables.docx in ``figure_cost`` units (python-docx import included)
DOCX_COST = 4.0


def _draw_job(
    figs: list[Drawn],
    formats: tuple[str, ...],
    folder: Path,
    report: Report | None = None,
    docx_path: Path | None = None,
) -> None:
    for drawn in figs:
        F.save(drawn, folder, formats=formats)
    if report is not None and docx_path is not None:
        from cartrial.report.docx_tables import write_docx

        write_docx(report, docx_path)


def _fork(
    figs: list[Drawn],
    formats: tuple[str, ...],
    folder: Path,
    report: Report | None = None,
    docx_path: Path | None = None,
):
    import multiprocessing as mp

    proc = mp.get_context("fork").Process(
        target=_draw_job, args=(figs, formats, folder, report, docx_path), daemon=True
    )
    proc.start()
    return proc


class FigureDrawing:
    """Draws a report's figures in a forked child while the report is still being built.

    Pass ``add`` as ``build_report(on_figures=...)``: each section's finished figures are
    handed to a forked child as soon as no other child is drawing (the parent goes on
    computing the next sections: two cores busy); figures arriving while a child draws wait
    for ``write_report``, which draws them with the docx. Every figure is drawn once,
    into ``folder`` (a temporary folder beside the output folder; ``write_report`` moves
    it into the report).
    """

    def __init__(self, folder: Path, formats: tuple[str, ...] = ("png",)) -> None:
        self.folder = Path(folder)
        self.formats = tuple(formats)
        self.pending: list[Drawn] = []
        self.jobs: list[tuple[object, list[Drawn]]] = []

    @classmethod
    def beside(cls, target: Path, formats: tuple[str, ...]) -> FigureDrawing:
        """A drawing into a new temporary folder next to ``target``."""
        target.parent.mkdir(parents=True, exist_ok=True)
        return cls(
            Path(tempfile.mkdtemp(prefix=f".{target.name}.fig-", dir=target.parent)), formats
        )

    def add(self, figs: list[Drawn]) -> None:
        self.pending += figs
        busy = any(proc.is_alive() for proc, _ in self.jobs)  # type: ignore[attr-defined]
        if busy or not self.pending or not can_fork(len(self.pending)):
            return
        batch, self.pending = self.pending, []
        self.jobs.append((_fork(batch, self.formats, self.folder), batch))

    def take_pending(self) -> list[Drawn]:
        """The figures no child has taken (to be drawn by ``write_report``)."""
        left, self.pending = self.pending, []
        return left

    def join(self) -> list[Drawn]:
        """Wait for the children; return the figures of any child that failed."""
        failed: list[Drawn] = []
        for proc, batch in self.jobs:
            proc.join()  # type: ignore[attr-defined]
            if proc.exitcode != 0:  # type: ignore[attr-defined]
                failed += batch
        self.jobs = []
        return failed

    def discard(self) -> None:
        """Stop the children and remove the folder (after a failed build)."""
        for proc, _ in self.jobs:
            proc.join()  # type: ignore[attr-defined]
        self.jobs = []
        shutil.rmtree(self.folder, ignore_errors=True)


def share(figs: list[Drawn], other_load: float = DOCX_COST) -> tuple[list[Drawn], list[Drawn]]:
    """(child's, parent's) figures, costliest first to the less loaded side; the child
    starts with ``other_load`` (tables.docx). Print order is kept within each share."""
    order = sorted(range(len(figs)), key=lambda i: -figure_cost(figs[i]))
    load = [other_load, 0.0]
    side = [0] * len(figs)
    for i in order:
        k = 0 if load[0] <= load[1] else 1
        side[i] = k
        load[k] += figure_cost(figs[i])
    return (
        [f for f, k in zip(figs, side, strict=True) if k == 0],
        [f for f, k in zip(figs, side, strict=True) if k == 1],
    )


def write_report(
    report: Report,
    outdir: str | os.PathLike[str],
    overwrite: bool = False,
    progress: Progress | None = None,
    drawing: FigureDrawing | None = None,
) -> Path:
    """Write the report folder atomically (temporary folder beside OUTDIR, then moved).

    Every figure is drawn once, to PNG (``figures/<name>.png``), and that image is what
    the HTML, the PDF and the folder hold; ``figure_formats`` adds SVG/PDF files. With
    ``drawing`` (``FigureDrawing`` given to ``build_report``), the figures its children
    drew are used and only the others are drawn here.
    """

    say = progress or _noop
    target = Path(outdir)
    check_target(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    formats = tuple(report.settings.figure_formats)
    if drawing is not None and drawing.formats != formats:
        raise ValueError(
            f"figure drawing formats {drawing.formats} differ from the "
            f"settings' figure_formats {formats}"
        )
    try:
        (work / "tables").mkdir()
        fig_dir = drawing.folder if drawing is not None else work / "figures"
        fig_dir.mkdir(exist_ok=True)
        for t in report.tables:
            write_csv(t.df, work / "tables" / f"{t.name}.csv", report.synthetic)
        figs = [d for _, d in report.figures]
        say(f"drawing {len(figs)} figures ({', '.join(formats)}) and writing tables.docx")
        left = drawing.take_pending() if drawing is not None else figs
        # a forked child writes tables.docx and draws part of the figures while this
        # process draws the rest (two cores), each figure once per requested format
        theirs, mine = share(left) if can_fork(len(left)) else ([], left)
        worker = (
            _fork(theirs, formats, fig_dir, report, work / "tables.docx")
            if can_fork(len(left))
            else None
        )
        for drawn in mine:
            F.save(drawn, fig_dir, formats=formats)
        redo = drawing.join() if drawing is not None else []
        if worker is None:
            write_docx(report, work / "tables.docx")
        else:
            worker.join()
            if worker.exitcode != 0:  # the child failed: do its part here instead
                redo += theirs
                write_docx(report, work / "tables.docx")
        for drawn in redo:
            F.save(drawn, fig_dir, formats=formats)
        if drawing is not None:
            fig_dir.rename(work / "figures")
        say(f"typesetting report.pdf ({len(report.tables)} tables, {len(figs)} figures)")
        write_pdf(report, work / "report.pdf", work / "figures")
        (work / "settings.yaml").write_text(report.settings.to_yaml(), encoding="utf-8")
        say("writing index.html")
        (work / "index.html").write_text(render_html(report, work / "figures"), encoding="utf-8")
        swap_into_place(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if drawing is not None:
            drawing.discard()
        raise
    return target


def close_figures(report: Report) -> None:
    """Free the figures' memory: the report's figures are ``Figure`` objects (no pyplot
    registry to close them in), released with the report; a figure some caller made with
    pyplot is closed there."""
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    for _, drawn in report.figures:
        plt.close(drawn.fig)
