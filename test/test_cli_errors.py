"""The command-line tools end with one ``<tool>: error: ...`` line and status 2 when a path they
were given does not exist, as argparse does for a bad option; other failures keep their traceback."""
import importlib

import pytest

from offload_common.cli import path_errors_in_one_line

MISSING = "/nonexistent/edge_offload"
CASES = [
    ("h2c_evaluate", "how2compress_ros.evaluate_cli", ["--model", MISSING]),
    ("h2c_profile", "how2compress_ros.profile_cli", ["--model", MISSING, "--out", f"{MISSING}/lut.json"]),
    ("approxbit_profile", "approxbit_ros.profile_cli", ["--backbone", MISSING, "--out", f"{MISSING}/lut.json"]),
    ("approxbit_train_configs", "approxbit_ros.training.train_configs_cli", ["--backbone", MISSING, "--out", MISSING]),
    ("approxbit_fit_entropy", "approxbit_ros.training.fit_entropy_cli", ["--backbone", MISSING]),
]


@pytest.mark.parametrize("argv, says", [
    (["--footage", MISSING, "--set-folder", MISSING], "no such recording or folder"),
    (["--footage", "test", "--set-folder", MISSING, "--frame-stride", "0"], "bad footage config"),
    (["--footage", "test"], "--footage needs --set-folder"),
], ids=["missing recording", "bad option", "no set folder"])
def test_footage_problems_are_one_error_line(argv, says, capsys):
    """The committed cnn3d backbone, bad footage arguments: one line, status 2, before any training."""
    import os

    from approxbit_ros.training.train_configs_cli import main

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        status = main(["--backbone", os.path.join(root, "models", "approxbit", "cnn3d-actions")] + argv)
    except SystemExit as exc:            # argparse's error()
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("approxbit_train_configs: error: ") and says in err


@pytest.mark.parametrize("prog, module, argv", CASES, ids=[c[0] for c in CASES])
def test_a_missing_model_folder_is_one_error_line(prog, module, argv, capsys):
    assert importlib.import_module(module).main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{prog}: error: ") and MISSING in err
    assert "\n" not in err and "Traceback" not in err


def test_other_failures_keep_their_traceback():
    @path_errors_in_one_line("tool")
    def main(argv=None):
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        main([])
