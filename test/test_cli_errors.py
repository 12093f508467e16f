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
]


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
