#!/bin/bash
# `segment pack` at deal scale against `commp` of the same bytes (BENCHMARKS.md, "FRC-0058 deals").
# N CARs of 1,065,353,216 random bytes (each a 1 GiB piece) in INPUTS (default /dev/shm/scale),
# packed into one deal of DEAL_SIZE written at DEAL (default /tmp/deal.scale: the disk), fsync and
# rename included; each round runs commp of every CAR, pack with direct I/O, pack --buffered.
# Prints wall and CPU per run; take medians. Usage: benches/segment_scale.sh [N] [ROUNDS]
set -euo pipefail
N=${1:-15}; ROUNDS=${2:-3}
B=$(realpath "${B:-$(dirname "$0")/../target/release/carload}")
INPUTS=${INPUTS:-/dev/shm/scale}; DEAL=${DEAL:-/tmp/deal.scale}; DEAL_SIZE=${DEAL_SIZE:-16GiB}
mkdir -p "$INPUTS"
for i in $(seq -w 1 "$N"); do
  f="$INPUTS/c$i.car"
  [ -s "$f" ] || openssl enc -aes-128-ctr -pass "pass:$i" -nosalt -pbkdf2 < /dev/zero 2>/dev/null | head -c 1065353216 > "$f"
done
cd "$INPUTS"
for _ in $(seq "$ROUNDS"); do
  /usr/bin/time -f "commp wall=%e cpu=%U+%S" bash -c "for f in c*.car; do '$B' commp --skip-car-validation \$f; done" > /dev/null
  for mode in "" --buffered; do
    rm -f "$DEAL"; sync
    /usr/bin/time -f "pack ${mode:---direct} wall=%e cpu=%U+%S" "$B" segment pack --skip-car-validation $mode \
      --deal-size "$DEAL_SIZE" -o "$DEAL" -q c*.car > /dev/null
  done
  rm -f "$DEAL"; sync
done
