#!/usr/bin/env bash
# Installs the Debian 12 packages ipfs-accelerate needs, only those missing (idempotent; a no-op
# taking well under a second when everything is present). Used by scripts/demo.sh and
# scripts/test.sh. munge and the Slurm daemons are for the private one-node cluster of
# tests/e2e/slurm_sbatch.sh (scripts/slurm/start-local-slurm.sh starts its own daemons; no
# system-wide Slurm or munge service is used). CUDA is not installed here: the CUDA backend is
# built whenever nvcc is found (e.g. /usr/local/cuda/bin/nvcc from NVIDIA's toolkit).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  openmpi-bin libopenmpi-dev
  libhdf5-dev hdf5-tools
  libeigen3-dev libcli11-dev libyaml-cpp-dev nlohmann-json3-dev libcereal-dev libxxhash-dev
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-h5py python3-numpy python3-pandas python3-mpi4py
  procps
  munge slurmctld slurmd slurm-client
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# report.html (docs/report.md): Node.js and npm run `npm ci` for uPlot at configure time; chromium
# runs the report's headless-browser test; xmllint (libxml2-utils) validates the JUnit export.
# Checked by command, not by package: a Node.js from NodeSource (which bundles npm and conflicts
# with Debian's npm package) or another chromium build counts as present.
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
command -v xmllint >/dev/null || missing+=(libxml2-utils)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 2; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2 || true
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
