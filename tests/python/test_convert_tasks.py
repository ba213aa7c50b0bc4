"""scripts/convert_tasks.py on tiny hand-made samples of each source format (Hugging Face JSON Lines
exports and the original releases of PIQA, HellaSwag and ARC). Expected outputs are written out here
from the harness's prompt templates, not produced by the script. When the C++ test executable
test_eval_task is built (build/*/tests/test_eval_task, or $QUOPT_TEST_EVAL_TASK), quopt's own JSONL
loader must read the converted files too.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "convert_tasks.py"
_spec = importlib.util.spec_from_file_location("convert_tasks", SCRIPT)
convert_tasks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(convert_tasks)


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def run(*args, ok=True):
    """Runs the script's main() in-process (fast); returns returncode, stdout and stderr."""
    import contextlib
    import io
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = convert_tasks.main([str(a) for a in args])
    proc = SimpleNamespace(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue())
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_command_line(tmp_path):
    src = write_jsonl(tmp_path / "piqa.jsonl", PIQA_HF)
    out = tmp_path / "o.jsonl"
    proc = subprocess.run([sys.executable, str(SCRIPT), "piqa", str(src), "-o", str(out)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(read_out(out)) == 2
    proc = subprocess.run([sys.executable, str(SCRIPT), "nope", str(src), "-o", str(out)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def read_out(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def cxx_loader():
    env = os.environ.get("QUOPT_TEST_EVAL_TASK")
    if env:
        return Path(env)
    found = sorted(REPO.glob("build/*/tests/test_eval_task"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def check_with_cxx(path, n):
    exe = cxx_loader()
    if exe is None or not exe.exists():
        return  # the C++ side is optional here; its own unit tests cover the loader
    env = dict(os.environ, QUOPT_EVAL_TASK_FILE=str(path), QUOPT_EVAL_TASK_COUNT=str(n))
    proc = subprocess.run([str(exe), "--gtest_filter=EvalTaskInterop.LoadsConvertedFile"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[  PASSED  ] 1 test" in proc.stdout and "SKIPPED" not in proc.stdout, proc.stdout


PIQA_HF = [
    {"goal": "How do I dry wet shoes?", "sol1": "Stuff them with newspaper.", "sol2": "Put them in the oven.",
     "label": 0},
    {"goal": "Open a jar", "sol1": "Hit it with a hammer", "sol2": "Run the lid under hot water", "label": 1},
]


def test_piqa_hf_export(tmp_path):
    src = write_jsonl(tmp_path / "piqa-validation.jsonl", PIQA_HF)
    out = tmp_path / "out" / "piqa.jsonl"
    proc = run("piqa", src, "-o", out)
    assert "wrote 2 piqa examples" in proc.stdout
    got = read_out(out)
    assert got == [
        {"id": "piqa-0", "context": "Question: How do I dry wet shoes?\nAnswer:",
         "choices": ["Stuff them with newspaper.", "Put them in the oven."], "label": 0},
        {"id": "piqa-1", "context": "Question: Open a jar\nAnswer:",
         "choices": ["Hit it with a hammer", "Run the lid under hot water"], "label": 1},
    ]
    assert not (tmp_path / "out" / "piqa.jsonl.tmp").exists()
    check_with_cxx(out, 2)


def test_piqa_original_release_with_label_file(tmp_path):
    recs = [{"id": "a1", "goal": g["goal"], "sol1": g["sol1"], "sol2": g["sol2"]} for g in PIQA_HF]
    src = write_jsonl(tmp_path / "valid.jsonl", recs)
    (tmp_path / "valid-labels.lst").write_text("1\n0\n")
    out = tmp_path / "piqa.jsonl"
    run("piqa", src, "--labels", tmp_path / "valid-labels.lst", "-o", out)
    got = read_out(out)
    assert [g["label"] for g in got] == [1, 0]
    assert got[0]["id"] == "a1"
    # Too few labels for the records.
    (tmp_path / "short.lst").write_text("1\n")
    proc = run("piqa", src, "--labels", tmp_path / "short.lst", "-o", out, ok=False)
    assert proc.returncode == 2
    assert "short.lst has 1 labels" in proc.stderr


HELLASWAG_HF = {
    "ind": 24, "activity_label": "Roof shingle removal",
    "ctx_a": "A man is sitting on a roof.", "ctx_b": "he",
    "ctx": "A man is sitting on a roof. he",
    "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                "is holding a rubik's cube.", "starts pulling up roofing on a roof."],
    "source_id": "activitynet~v_-JhWjGDPHMY", "split": "val", "split_type": "indomain", "label": "3",
}
HELLASWAG_WIKIHOW = {
    "ind": 7, "activity_label": "Health",
    "ctx_a": "[header] How to stay calm [title] Breathe slowly.", "ctx_b": "then, count to ten",
    "endings": ["[step] Relax your  shoulders.", "Shout.", "Run [substeps] away.", "Sleep."],
    "label": 0,  # the original release stores an integer
}


def test_hellaswag_hf_and_original(tmp_path):
    src = write_jsonl(tmp_path / "hellaswag_val.jsonl", [HELLASWAG_HF, HELLASWAG_WIKIHOW])
    out = tmp_path / "hs.jsonl"
    run("hellaswag", src, "-o", out)
    got = read_out(out)
    # activity_label + ": " + ctx_a + " " + ctx_b.capitalize(), then the cleanup.
    assert got[0] == {"id": "hellaswag-24", "context": "Roof shingle removal: A man is sitting on a roof. He",
                      "choices": HELLASWAG_HF["endings"], "label": 3}
    # " [title]" -> ". ", other [markers] dropped, double spaces collapsed once; the harness strips before
    # dropping markers, so a leading marker leaves a leading space (kept, as the harness keeps it).
    assert got[1]["context"] == "Health: How to stay calm. Breathe slowly. Then, count to ten"
    assert got[1]["choices"] == [" Relax your shoulders.", "Shout.", "Run away.", "Sleep."]
    assert got[1]["label"] == 0
    check_with_cxx(out, 2)


def test_hellaswag_test_split_needs_skip(tmp_path):
    unlabeled = dict(HELLASWAG_HF, label="")
    src = write_jsonl(tmp_path / "hellaswag_test.jsonl", [HELLASWAG_HF, unlabeled])
    out = tmp_path / "hs.jsonl"
    proc = run("hellaswag", src, "-o", out, ok=False)
    assert proc.returncode == 2
    assert "hellaswag_test.jsonl:2: the record has no label" in proc.stderr
    assert not out.exists()
    proc = run("hellaswag", src, "-o", out, "--skip-unlabeled")
    assert "skipped 1 unlabeled" in proc.stdout
    assert len(read_out(out)) == 1


ARC_HF = {
    "id": "Mercury_7175875", "question": "Which is a renewable resource?",
    "choices": {"text": ["coal", "wind", "oil", "natural gas"], "label": ["A", "B", "C", "D"]},
    "answerKey": "B",
}
ARC_ORIGINAL = {
    "id": "NYSEDREGENTS_2015_4_3", "answerKey": "3",
    "question": {"stem": "What keeps a plant upright?", "choices": [
        {"text": "roots", "label": "1"}, {"text": "leaves", "label": "2"},
        {"text": "stem", "label": "3"}, {"text": "flowers", "label": "4"}]},
}


def test_arc_hf_and_original(tmp_path):
    src = write_jsonl(tmp_path / "ARC-Easy-Test.jsonl", [ARC_HF, ARC_ORIGINAL])
    out = tmp_path / "arc.jsonl"
    run("arc_easy", src, "-o", out)
    got = read_out(out)
    assert got[0] == {"id": "Mercury_7175875", "context": "Question: Which is a renewable resource?\nAnswer:",
                      "choices": ["coal", "wind", "oil", "natural gas"], "label": 1}
    assert got[1] == {"id": "NYSEDREGENTS_2015_4_3", "context": "Question: What keeps a plant upright?\nAnswer:",
                      "choices": ["roots", "leaves", "stem", "flowers"], "label": 2}
    check_with_cxx(out, 2)


def test_non_ascii_text_is_kept(tmp_path):
    rec = dict(PIQA_HF[0], goal="Make a caf\u00e9 cr\u00e8me")
    src = write_jsonl(tmp_path / "p.jsonl", [rec])
    out = tmp_path / "p-out.jsonl"
    run("piqa", src, "-o", out)
    assert "caf\u00e9 cr\u00e8me" in out.read_text(encoding="utf-8")  # written as UTF-8, not \u escapes
    check_with_cxx(out, 1)


@pytest.mark.parametrize("task,record,message", [
    ("piqa", {"goal": "g", "sol1": "a", "label": 0}, "missing key 'sol2'"),
    ("piqa", {"goal": "g", "sol1": "a", "sol2": "b", "label": 2}, "label 2 is out of range for 2 choices"),
    ("piqa", {"goal": "g", "sol1": "a", "sol2": "b", "label": "x"}, "label 'x' is not an integer"),
    ("hellaswag", dict(HELLASWAG_HF, endings="abc"), "'endings' should be a list"),
    ("arc_easy", dict(ARC_HF, answerKey="E"), "answerKey 'E' is not one of the choice labels"),
    ("arc_easy", dict(ARC_HF, choices={"text": ["a"], "label": ["A", "B"]}), "equally long lists"),
])
def test_bad_records_name_file_and_line(tmp_path, task, record, message):
    src = tmp_path / "in.jsonl"
    src.write_text("\n" + json.dumps(record) + "\n", encoding="utf-8")  # the record is on line 2
    proc = run(task, src, "-o", tmp_path / "out.jsonl", ok=False)
    assert proc.returncode == 2
    assert f"{src}:2: " in proc.stderr
    assert message in proc.stderr


def test_invalid_json_and_missing_file(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps(PIQA_HF[0]) + "\n{not json\n", encoding="utf-8")
    proc = run("piqa", src, "-o", tmp_path / "o.jsonl", ok=False)
    assert proc.returncode == 2 and f"{src}:2: invalid JSON" in proc.stderr
    proc = run("piqa", tmp_path / "missing.jsonl", "-o", tmp_path / "o.jsonl", ok=False)
    assert proc.returncode == 2 and "cannot read" in proc.stderr
    src.write_text("\n\n", encoding="utf-8")
    proc = run("piqa", src, "-o", tmp_path / "o.jsonl", ok=False)
    assert proc.returncode == 2 and "no examples converted" in proc.stderr


def test_limit(tmp_path):
    src = write_jsonl(tmp_path / "p.jsonl", PIQA_HF * 3)
    out = tmp_path / "o.jsonl"
    run("piqa", src, "-o", out, "--limit", "4")
    assert len(read_out(out)) == 4
