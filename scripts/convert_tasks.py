#!/usr/bin/env python3
"""Convert PIQA, HellaSwag and ARC (Easy/Challenge) to quopt's multiple-choice JSONL.

quopt's task format (inputs/tasks/README.md) is one JSON object per line:

    {"id": "...", "context": "...", "choices": ["...", "..."], "label": 0}

The prompts are those of lm-evaluation-harness (EleutherAI), so accuracies are comparable with
numbers reported by it (e.g. the OLMo2 / "Beyond Outliers" tables):

    piqa       context "Question: {goal}\\nAnswer:", choices [sol1, sol2]        (tasks/piqa/piqa.yaml)
    hellaswag  context = clean(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()),
               choices = clean(ending) for each ending                         (tasks/hellaswag/utils.py)
    arc_easy   context "Question: {question}\\nAnswer:", choices = the choice texts,
    arc_challenge  label = position of answerKey among the choice labels      (tasks/arc/arc_easy.yaml)

quopt's evaluator puts the harness's target delimiter " " between context and choice.

Accepted inputs (this script downloads nothing; fetch the data yourself):
  * the Hugging Face datasets exported to JSON Lines, e.g.
        datasets.load_dataset("piqa", split="validation").to_json("piqa-validation.jsonl")
    (ybisk/piqa, Rowan/hellaswag, allenai/ai2_arc with config ARC-Easy or ARC-Challenge);
  * the same splits as .parquet files (needs pyarrow);
  * the original releases: PIQA's valid.jsonl with its labels in valid-labels.lst (--labels),
    HellaSwag's hellaswag_val.jsonl, ARC's ARC-Easy-Dev.jsonl / ARC-Easy-Test.jsonl.

Usage:
    scripts/convert_tasks.py piqa valid.jsonl --labels valid-labels.lst -o inputs/tasks/piqa.jsonl
    scripts/convert_tasks.py hellaswag hellaswag_val.jsonl -o inputs/tasks/hellaswag.jsonl
    scripts/convert_tasks.py arc_easy ARC-Easy-Test.jsonl -o inputs/tasks/arc_easy.jsonl

Records without a label (the test splits of PIQA and HellaSwag have none) are an error unless
--skip-unlabeled is given. Errors name the file, the line and the problem; the exit status is 2.
"""

import argparse
import json
import os
import re
import sys

TASKS = ("piqa", "hellaswag", "arc_easy", "arc_challenge")


class ConvertError(Exception):
    """A problem with the input; the message names the file and line."""


class Unlabeled(Exception):
    """The record has no label (a test split)."""


# ---- readers -------------------------------------------------------------------------------------------


def read_records(path):
    """Yields (line_number, record dict) from a JSON Lines or parquet file."""
    if path.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq  # optional dependency, only for parquet input
        except ImportError as exc:
            raise ConvertError(
                f"{path}: reading parquet needs pyarrow (pip install pyarrow), or export the split to "
                "JSON Lines with datasets' Dataset.to_json(...)") from exc
        for i, rec in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield i, rec
        return
    try:
        f = open(path, encoding="utf-8-sig")
    except OSError as exc:
        raise ConvertError(f"cannot read {path}: {exc.strerror}") from exc
    with f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConvertError(f"{path}:{n}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
            except UnicodeDecodeError as exc:
                raise ConvertError(f"{path}:{n}: not UTF-8 text") from exc
            if not isinstance(rec, dict):
                raise ConvertError(f"{path}:{n}: expected a JSON object, got {type(rec).__name__}")
            yield n, rec


def read_label_list(path):
    """PIQA's original release keeps labels apart: one integer per line (valid-labels.lst)."""
    labels = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    labels.append(int(line.strip()))
                except ValueError as exc:
                    raise ConvertError(f"{path}:{n}: expected an integer label, got {line.strip()!r}") from exc
    except OSError as exc:
        raise ConvertError(f"cannot read {path}: {exc.strerror}") from exc
    return labels


def need(rec, key, where, kind=str):
    if key not in rec:
        raise ConvertError(f"{where}: missing key {key!r}")
    value = rec[key]
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ConvertError(f"{where}: {key!r} should be a {names}, got {type(value).__name__}")
    return value


def as_label(value, n_choices, where):
    """Integer label from an int or a numeric string; None / "" / -1 mean unlabeled."""
    if value is None or value == "" or value == -1:
        raise Unlabeled()
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConvertError(f"{where}: label {value!r} is not an integer")
    try:
        label = int(value)
    except ValueError as exc:
        raise ConvertError(f"{where}: label {value!r} is not an integer") from exc
    if not 0 <= label < n_choices:
        raise ConvertError(f"{where}: label {label} is out of range for {n_choices} choices")
    return label


# ---- tasks ---------------------------------------------------------------------------------------------


def convert_piqa(rec, where, index, external_label):
    goal = need(rec, "goal", where)
    choices = [need(rec, "sol1", where), need(rec, "sol2", where)]
    label = external_label if external_label is not None else rec.get("label")
    return {
        "id": str(rec.get("id", f"piqa-{index}")),
        "context": f"Question: {goal}\nAnswer:",
        "choices": choices,
        "label": as_label(label, 2, where),
    }


def hellaswag_clean(text):
    """The harness's HellaSwag text cleanup: strip, turn WikiHow's " [title]" into a sentence end,
    drop the remaining [bracketed] markers, then collapse double spaces once."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def convert_hellaswag(rec, where, index, _external_label):
    activity = need(rec, "activity_label", where)
    ctx_a = need(rec, "ctx_a", where)
    ctx_b = need(rec, "ctx_b", where)
    endings = need(rec, "endings", where, list)
    if len(endings) < 2 or not all(isinstance(e, str) for e in endings):
        raise ConvertError(f"{where}: 'endings' should be a list of at least 2 strings")
    context = hellaswag_clean(activity + ": " + ctx_a + " " + ctx_b.capitalize())
    return {
        "id": f"hellaswag-{rec.get('ind', index)}",
        "context": context,
        "choices": [hellaswag_clean(e) for e in endings],
        "label": as_label(rec.get("label"), len(endings), where),
    }


def convert_arc(rec, where, index, _external_label):
    question = need(rec, "question", where, (str, dict))
    if isinstance(question, dict):  # original release: {"stem": ..., "choices": [{"text", "label"}]}
        stem = need(question, "stem", where)
        raw = need(question, "choices", where, list)
        texts, keys = [], []
        for c in raw:
            if not isinstance(c, dict) or "text" not in c or "label" not in c:
                raise ConvertError(f"{where}: each question.choices entry needs 'text' and 'label'")
            texts.append(c["text"])
            keys.append(c["label"])
    else:  # Hugging Face: "question": str, "choices": {"text": [...], "label": [...]}
        stem = question
        choices = need(rec, "choices", where, dict)
        texts, keys = choices.get("text"), choices.get("label")
        if not isinstance(texts, list) or not isinstance(keys, list) or len(texts) != len(keys):
            raise ConvertError(f"{where}: 'choices' should hold equally long lists 'text' and 'label'")
    if len(texts) < 2:
        raise ConvertError(f"{where}: {len(texts)} choice(s); at least 2 are needed")
    answer = rec.get("answerKey")
    if answer in (None, ""):
        raise Unlabeled()
    if answer not in keys:
        raise ConvertError(f"{where}: answerKey {answer!r} is not one of the choice labels {keys}")
    return {
        "id": str(rec.get("id", f"arc-{index}")),
        "context": f"Question: {stem}\nAnswer:",
        "choices": [str(t) for t in texts],
        "label": keys.index(answer),
    }


CONVERTERS = {
    "piqa": convert_piqa,
    "hellaswag": convert_hellaswag,
    "arc_easy": convert_arc,
    "arc_challenge": convert_arc,
}


def convert(task, input_path, output_path, labels_path=None, skip_unlabeled=False, limit=None):
    """Converts one file; returns (written, skipped). Writes through OUTPUT.tmp and a rename."""
    if task not in CONVERTERS:
        raise ConvertError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if labels_path and task != "piqa":
        raise ConvertError("--labels is only for PIQA's original release (valid-labels.lst)")
    labels = read_label_list(labels_path) if labels_path else None
    fn = CONVERTERS[task]
    out, skipped = [], 0
    index = 0
    for line, rec in read_records(input_path):
        where = f"{input_path}:{line}"
        external = None
        if labels is not None:
            if index >= len(labels):
                raise ConvertError(f"{labels_path} has {len(labels)} labels but {input_path} has more records")
            external = labels[index]
        try:
            ex = fn(rec, where, index, external)
        except Unlabeled:
            if not skip_unlabeled:
                raise ConvertError(f"{where}: the record has no label (a test split?); convert the validation "
                                   "split, or pass --skip-unlabeled") from None
            skipped += 1
            ex = None
        index += 1
        if ex is not None:
            if any(not c for c in ex["choices"]):
                raise ConvertError(f"{where}: a choice is empty after conversion; quopt cannot score it")
            out.append(ex)
        if limit is not None and len(out) >= limit:
            break
    if labels is not None and limit is None and index != len(labels):
        raise ConvertError(f"{labels_path} has {len(labels)} labels but {input_path} has {index} records")
    if not out:
        raise ConvertError(f"{input_path}: no examples converted")
    tmp = output_path + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f:
        for ex in out:
            f.write(json.dumps(ex, ensure_ascii=False) + "\n")
    os.replace(tmp, output_path)
    return len(out), skipped


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="See the module docstring (head of this file) for the formats.")
    p.add_argument("task", choices=TASKS)
    p.add_argument("input", help="the split as JSON Lines (.jsonl) or parquet (.parquet)")
    p.add_argument("-o", "--output", required=True, help="quopt task file to write (.jsonl)")
    p.add_argument("--labels", help="PIQA original release: the labels file (e.g. valid-labels.lst)")
    p.add_argument("--skip-unlabeled", action="store_true", help="drop records without a label")
    p.add_argument("--limit", type=int, help="stop after this many examples")
    args = p.parse_args(argv)
    try:
        n, skipped = convert(args.task, args.input, args.output, args.labels, args.skip_unlabeled, args.limit)
    except ConvertError as exc:
        print(f"convert_tasks.py: error: {exc}", file=sys.stderr)
        return 2
    msg = f"wrote {n} {args.task} examples to {args.output}"
    if skipped:
        msg += f" (skipped {skipped} unlabeled)"
    print(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
