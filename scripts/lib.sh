# Shared by scripts/demo.sh and scripts/test.sh: installs what is missing, builds a preset.
# Sourced, not executed.

QUOPT_APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools
  libtrilinos-kokkos-dev libopenblas-dev liblapacke-dev
  libsentencepiece-dev libtoml11-dev libcli11-dev nlohmann-json3-dev libpcre2-dev libxxhash-dev libsleef-dev
  libgtest-dev libgmock-dev
  slurm-wlm munge
)
QUOPT_PY_MODULES=(numpy scipy h5py matplotlib pytest yaml)
# pip package names where they differ from the module names
declare -A QUOPT_PIP_NAME=([yaml]=pyyaml)

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# apt-get install of the packages that are not installed yet (nothing when all are there).
ensure_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# pip install of the Python modules that do not import yet.
ensure_python() {
  local missing=()
  for m in "${QUOPT_PY_MODULES[@]}"; do
    python3 -c "import $m" 2>/dev/null || missing+=("${QUOPT_PIP_NAME[$m]:-$m}")
  done
  if ((${#missing[@]})); then
    log "installing Python packages: ${missing[*]}"
    python3 -m pip install -q "${missing[@]}" || python3 -m pip install -q --break-system-packages "${missing[@]}"
  fi
}

ensure_deps() {
  ensure_apt "${QUOPT_APT_PACKAGES[@]}"
  ensure_python
}

# Configures (once) and builds a CMake preset; extra arguments are build targets.
build_preset() {
  local preset=$1
  shift
  if [ ! -f "build/$preset/CMakeCache.txt" ]; then
    log "configuring preset $preset"
    cmake --preset "$preset" >"build-$preset-configure.log" 2>&1 || { cat "build-$preset-configure.log"; return 1; }
    rm -f "build-$preset-configure.log"
  fi
  log "building preset $preset"
  local targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  cmake --build "build/$preset" -j "$(nproc)" "${targets[@]}"
}

# nvcc on PATH or in the default CUDA location.
find_nvcc() {
  command -v nvcc 2>/dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; } || true
}
