"""approxbit_train_vqa --refresh-table: the VQA lookup table takes the action table's current
bytes and times (e.g. after entropy coding shrank the payloads) and keeps its VQA accuracies."""
import json
import os
import shutil

from approxbit_ros.vqa.train_cli import main
from offload_common.lookup_table import LookupTable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKBONE = os.path.join(ROOT, "models", "approxbit", "cnn3d-actions")


def test_refresh_takes_bytes_and_times_from_the_action_table_and_keeps_accuracy(tmp_path):
    vqa = tmp_path / "vqa"
    shutil.copytree(os.path.join(BACKBONE, "vqa"), vqa)
    action = json.loads(open(os.path.join(BACKBONE, "lut_cpu.json")).read())
    for i, e in enumerate(action["entries"]):
        e["bytes"], e["decode_ms"] = 1000.0 + i, 7.0 + i
    (tmp_path / "action.json").write_text(json.dumps(action))
    before = {e.config_id: e for e in LookupTable.load(str(vqa / "lut_cpu.json")).entries}
    assert main(["--backbone", BACKBONE, "--out", str(vqa), "--action-table", str(tmp_path / "action.json"),
                 "--refresh-table"]) == 0
    after = {e.config_id: e for e in LookupTable.load(str(vqa / "lut_cpu.json")).entries}
    assert set(after) == set(before)
    by_id = {e["config_id"]: e for e in action["entries"]}
    for cid, e in after.items():
        assert e.accuracy == before[cid].accuracy and e.extra == before[cid].extra
        assert e.bytes == by_id[cid]["bytes"] and e.decode_ms == by_id[cid]["decode_ms"]
