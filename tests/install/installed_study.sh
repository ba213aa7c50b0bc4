#!/usr/bin/env bash
# Install test: `cmake --install` of this build into a temporary prefix, then a tiny study run from the
# prefix alone, the way docs/install.md tells a user to: quopt from PREFIX/bin, the study composed from
# the installed study, run and model files, the report by the installed postprocess package. Only the
# synthetic corpus comes from the source tree (test input). Fails on a missing install rule, on an
# installed file that names the source or build directory, and on a study file that only works from a
# checkout.
# Usage: installed_study.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

PREFIX=$WORK/prefix
cmake --install "$BUILD" --prefix "$PREFIX" > "$WORK/install.log" || {
  cat "$WORK/install.log"
  fail "cmake --install failed"
}
Q=$PREFIX/share/quopt
for f in bin/quopt share/quopt/inputs/study/mini.toml share/quopt/inputs/runs/study-base.toml \
  share/quopt/inputs/models/olmo2-20k.toml share/quopt/inputs/optimizers/adamw.toml \
  share/quopt/inputs/data/build-corpus.sh share/quopt/jobs/lib.sh share/quopt/jobs/submit-study.sh \
  share/quopt/postprocess/quopt_post/__main__.py share/doc/quopt/README.md share/doc/quopt/install.md; do
  [ -e "$PREFIX/$f" ] || fail "the install has no $f"
done
[ -x "$PREFIX/bin/quopt" ] && [ -x "$Q/jobs/submit-study.sh" ] && [ -x "$Q/inputs/data/build-corpus.sh" ] ||
  fail "installed programs lost their executable bit"
if grep -rlF -e "$SRC" -e "$BUILD" "$PREFIX/share"; then
  fail "the installed files above name the source or build directory"
fi

# From here on: a directory outside the checkout, the prefix first on PATH and PYTHONPATH.
cd "$WORK"
export PATH=$PREFIX/bin:$PATH PYTHONPATH=$Q/postprocess
[ "$(command -v quopt)" = "$PREFIX/bin/quopt" ] || fail "quopt on PATH is $(command -v quopt), not the installed one"
python3 "$SRC/tests/e2e/make_corpus.py" corpus.txt 150

# The user's two files (docs/install.md): data and runs live here, everything else comes from PREFIX.
cat > base.toml << TOML
include = ["$Q/inputs/runs/study-base.toml"]
[tokenize]
inputs = ["corpus.txt"]
out_dir = "tokens"
vocab_size = 512
[data]
train = "tokens/train.bin"
val = "tokens/val.bin"
tokenizer = "tokens/tokenizer.model"
TOML
cat > study.toml << TOML
include = ["$Q/inputs/study/mini.toml"]
[study]
name = "installed"
base = "base.toml"
out_dir = "runs"
sizes = ["$Q/inputs/models/olmo2-20k.toml"]
optimizers = ["adamw"]
ptq_schemes = ["rtn-w4a4"]
tokens_per_param = 0   # train.steps below
lr_scale = []          # one size
overrides = ["model.vocab_size=512", "train.steps=16", "train.log_every=8", "train.val_batches=2",
             "eval.val_batches=2", "eval.builtin_examples=20", "quant.calibration_batches=1",
             "checkpoint.every=0"]
[study.lr]
adamw = ["2e-2"]
TOML

quopt tokenize base.toml > tokenize.log 2>&1 || {
  cat tokenize.log
  fail "quopt tokenize failed"
}
[ "$(quopt study plan study.toml --count)" = 1 ] || fail "the plan has $(quopt study plan study.toml --count) runs, expected 1"
quopt study run study.toml > study.log 2>&1 || {
  cat study.log
  fail "quopt study run failed"
}
run=$(quopt study plan study.toml | awk -F '\t' '$1 == 0 {print $2}')
h5ls -r "$run/run.h5" > h5ls.txt
for g in /weights /quant/rtn-w4a4 /analysis/rtn-w4a4; do
  grep -q "^$g " h5ls.txt || fail "$run/run.h5 has no $g"
done

python3 -c "import quopt_post, sys; sys.exit(not quopt_post.__file__.startswith('$Q/'))" ||
  fail "python3 imports quopt_post from outside the prefix"
python3 -m quopt_post report runs --out report > report.log 2>&1 || {
  cat report.log
  fail "python3 -m quopt_post report failed"
}
grep -q "olmo2-20k" report/report.md || fail "report.md does not mention the run"

# The Slurm scripts find their siblings and the installed quopt from the prefix.
"$Q/jobs/submit-study.sh" --dry-run study.toml > submit.txt 2>&1 || {
  cat submit.txt
  fail "jobs/submit-study.sh --dry-run failed from the prefix"
}
grep -qF "$Q/jobs/sweep.sbatch" submit.txt || fail "submit-study.sh does not submit the installed jobs/sweep.sbatch"
echo "installed study: tokenize, train, ptq, analyze, report and a dry-run submission from $PREFIX"
