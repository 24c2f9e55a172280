"""The HTML report: self-contained, every figure, the metrics at the chosen times, escaped text."""

from __future__ import annotations

import re

import pytest

from abm.errors import UserError
from abm.viz.report import CAPTIONS, format_value, write_report
from tests.viz import synthetic

PNGS = ("slices.png", "fields.png", "timeseries.png", "surface.png")


@pytest.fixture(scope="module")
def default_report(_run_file, tmp_path_factory):
    """The report at the default times, written once for the tests that only read it."""
    return write_report(_run_file, tmp_path_factory.mktemp("report") / "out")


def test_report_embeds_every_figure_with_alt_and_caption(default_report):
    assert default_report.name == "viz_test_report.html"
    html = default_report.read_text(encoding="utf-8")
    assert tuple(CAPTIONS) == PNGS
    for name in PNGS:
        assert (default_report.parent / name).is_file()
        assert re.search(rf'<img src="data:image/png;base64,[A-Za-z0-9+/=]{{1000,}}" alt="{re.escape(name)}">', html)
        assert f"<figcaption><code>{name}</code>: " in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == len(PNGS) and all(s.startswith("data:") for s in sources), "self-contained"


def test_metrics_table_defaults_to_first_middle_last_rows(default_report):
    html = default_report.read_text(encoding="utf-8")
    series = synthetic.timeseries()
    for day in (0, 15, 30):
        assert f"<th>t = {day:g} d</th>" in html
        for column in ("bv_tv", "vbmd_mg_cm3", "abmd_g_cm2", "n_bmsc", "deaths_osteoblast_apoptosis"):
            assert f'<td class="num">{format_value(series.loc[day, column])}</td>' in html
    assert "<th>t = 3 d</th>" not in html
    assert "<td>mg HA/cm³</td>" in html


def test_chosen_times_pick_the_nearest_rows(tmp_path, run_path):
    html = write_report(run_path, tmp_path, times=[10, 20.2]).read_text(encoding="utf-8")
    heads = re.findall(r"<th>t = ([0-9.]+) d</th>", html)
    assert heads == ["9", "21"]
    assert f'<td class="num">{format_value(synthetic.timeseries().loc[21, "bv_tv"])}</td>' in html
    assert "snapshot figures at t = 20 d" in html


def test_text_from_the_run_is_escaped(default_report):
    html = default_report.read_text(encoding="utf-8")
    assert "half-max 10 mM, Hill 2 &lt;&amp;&gt;</pre>" in html
    assert "a &lt;b&gt; &amp; c" in html and "<b>" not in html
    assert "<pre>name = &quot;viz_test&quot;" in html
    for key in synthetic.PROVENANCE:
        assert f"<th>{key}</th>" in html


def test_a_time_outside_the_run_is_a_user_error(tmp_path, run_path):
    with pytest.raises(UserError, match=r"^--time: outside the run \(got 31, allowed 0 to 30 days\)$"):
        write_report(run_path, tmp_path, times=[5, 31])


def test_values_are_formatted_to_six_significant_digits():
    assert format_value(0.22131234) == "0.221312"
    assert format_value(25000.0) == "25000"
    assert format_value(float("nan")) == "n/a"


def test_an_unfinished_run_without_time_series_still_reports_its_snapshots(tmp_path, run_path, monkeypatch):
    import pandas as pd

    from abm.viz import runs
    from tests.viz.synthetic import FakeRun

    unfinished = FakeRun(timeseries=pd.DataFrame(index=pd.Index([], dtype=float, name="time_days")))
    monkeypatch.setattr(runs, "open_run", lambda path: unfinished)
    html = write_report(run_path, tmp_path).read_text(encoding="utf-8")
    assert "No time series recorded" in html and 'alt="timeseries.png"' in html
