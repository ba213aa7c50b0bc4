# shellcheck shell=bash
# Shared by chain.sh and failure.sh: skips (exit 77) when quopt has no `study` command yet, and writes
# a tiny study: one model size, AdamW at two learning rates, 20 training steps each, PTQ rtn-w4a4.
. "$(dirname "$0")/common.sh" "$@"
if ! "$QUOPT" study --help > /dev/null 2>&1; then
  echo "SKIP: $QUOPT has no 'study' command (quopt study plan/run); nothing to submit"
  exit 77
fi

SCHEME=rtn-w4a4  # the paper's PTQ setting (arXiv 2509.23500), the study default

# write_study DIR: DIR/study.toml (runs in DIR/study/), with make_data's corpus and model.
write_study() {
  local d=$1
  make_data "$d/data"
  sed -n '/^\[model\]/,/^\[tokenize\]/p' "$d/data/run.toml" | sed '$d' > "$d/data/model.toml"
  cat > "$d/study.toml" << TOML
[study]
name = "slurm-tiny"
base = "$d/data/run.toml"
out_dir = "$d/study"
sizes = ["$d/data/model.toml"]
optimizers = ["adamw"]
optimizer_dir = "$SRC/inputs/optimizers"
tokens_per_param = 0.0
ptq_schemes = ["$SCHEME"]
lr.adamw = ["3e-3", "1e-3"]
TOML
}

# submit_study STUDY [ARGS...]: runs jobs/submit-study.sh, prints its output; sets TRAIN PTQ ANALYZE
# REPORT (job ids) and REPORT_DIR.
submit_study() {
  local out
  out=$("$SRC/jobs/submit-study.sh" "$@") || {
    echo "$out"
    fail "jobs/submit-study.sh $* failed"
  }
  echo "$out"
  TRAIN=$(echo "$out" | awk '$1 == "train" {print $2}')
  PTQ=$(echo "$out" | awk '$1 == "ptq" {print $2}')
  ANALYZE=$(echo "$out" | awk '$1 == "analyze" {print $2}')
  REPORT=$(echo "$out" | awk '$1 == "report" {print $2}')
  REPORT_DIR=$(echo "$out" | sed -n 's/^report: *\([^ ]*\).*/\1/p')
  [ -n "$TRAIN" ] && [ -n "$PTQ" ] && [ -n "$ANALYZE" ] && [ -n "$REPORT" ] && [ -n "$REPORT_DIR" ] ||
    fail "could not read the job ids and the report directory from submit-study.sh's output"
}

# state_of TABLE JOB: "STATE REASON EXITCODE" of one line of a wait_jobs table.
state_of() { echo "$1" | awk -v j="$2" '$1 == j {print $3, $4, $5}'; }

# run_h5_has FILE GROUP: FILE is an HDF5 file with that group (h5ls, from hdf5-tools).
run_h5_has() { [ -f "$1" ] && h5ls "$1/$2" > /dev/null 2>&1; }
