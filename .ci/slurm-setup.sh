#!/usr/bin/env bash
# Installs Slurm and MUNGE for tests/it/slurm.rs (idempotent; safe to re-run). The test starts
# its own one-node cluster (private munged, slurmctld and slurmd with a generated slurm.conf in a
# temporary folder); nothing is configured or started here. CI then runs the ignored tests too
# (--include-ignored), so a missing Slurm fails instead of skipping.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

have_all() {
  local c
  for c in sbatch squeue scancel scontrol sinfo slurmctld slurmd munged; do
    command -v "$c" >/dev/null 2>&1 || return 1
  done
}

if ! have_all; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
have_all || { echo "slurm-setup: Slurm or MUNGE commands still missing after install" >&2; exit 1; }
echo "slurm-setup: $(slurmd -V) and $(munged -V 2>&1 | head -n1) installed"
