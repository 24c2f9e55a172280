"""``abm plot`` and ``abm report``: files written, paths printed, one-line errors with exit status 2."""

from __future__ import annotations

from abm.cli.main import main

PLOTS = ("slices.png", "fields.png", "timeseries.png", "surface.png", "timelapse.gif")


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_plot_writes_every_figure_beside_the_run_and_prints_the_paths(capsys, run_path):
    status, out, err = _run(capsys, "plot", run_path, "--time", 12)
    folder = run_path.parent / "viz_test_plots"
    assert (status, err) == (0, "")
    assert out.splitlines() == [str(folder / name) for name in PLOTS]
    assert all((folder / name).stat().st_size > 1000 for name in PLOTS)


def test_plot_out_folder(capsys, run_path, tmp_path):
    status, out, _ = _run(capsys, "plot", run_path, "--out", tmp_path / "figs")
    assert status == 0 and out.splitlines()[0] == str(tmp_path / "figs" / "slices.png")


def test_report_writes_the_page_and_pngs(capsys, run_path, tmp_path):
    status, out, err = _run(capsys, "report", run_path, "--time", 0, 30, "--out", tmp_path / "rep")
    assert (status, err) == (0, "")
    page = tmp_path / "rep" / "viz_test_report.html"
    assert out.splitlines()[0] == str(page) and page.is_file()
    assert all((tmp_path / "rep" / name).is_file() for name in PLOTS[:4])


def test_report_default_folder_is_beside_the_run(capsys, run_path):
    status, out, _ = _run(capsys, "report", run_path)
    assert status == 0
    assert out.splitlines()[0] == str(run_path.parent / "viz_test_report" / "viz_test_report.html")


def test_a_time_outside_the_run_is_one_line_with_the_allowed_range(capsys, run_path):
    for command in ("plot", "report"):
        status, out, err = _run(capsys, command, run_path, "--time", 45.5)
        assert (status, out) == (2, "")
        assert err == "error: --time: outside the run (got 45.5, allowed 0 to 30 days)\n"
    status, _, err = _run(capsys, "report", run_path, "--time", 3, -1)
    assert status == 2 and err == "error: --time: outside the run (got -1, allowed 0 to 30 days)\n"


def test_a_missing_file_is_one_line(capsys, tmp_path):
    missing = tmp_path / "nope.h5"
    for command in ("plot", "report"):
        status, out, err = _run(capsys, command, missing)
        assert (status, out, err) == (2, "", f"error: {missing}: no such file\n")
    assert not (tmp_path / "nope_plots").exists()


def test_a_time_that_is_not_a_number_is_one_line(capsys, run_path):
    status, _, err = _run(capsys, "plot", run_path, "--time", "late")
    assert status == 2 and err == "error: abm plot: argument --time: invalid float value: 'late'\n"


def test_out_must_not_be_a_file(capsys, run_path):
    status, _, err = _run(capsys, "plot", run_path, "--out", run_path)
    assert status == 2 and err == f"error: --out: {run_path} exists and is not a folder\n"


def test_a_file_that_is_not_a_run_file_is_one_line(capsys, tmp_path):
    import h5py

    garbage, empty = tmp_path / "garbage.h5", tmp_path / "empty.h5"
    garbage.write_bytes(b"not hdf5 at all\n" * 10)
    with h5py.File(empty, "w") as f:
        f.create_group("timeseries").create_dataset("time_days", data=[0.0, 1.0])
    for path, says in ((garbage, "not a readable"), (empty, "holds no snapshots")):
        status, out, err = _run(capsys, "plot", path)
        assert (status, out) == (2, "")
        assert err.startswith(f"error: {path}: ") and says in err and err.count("\n") == 1
