#!/usr/bin/env bash
# Instructions per verification, counted by callgrind (stable under machine noise):
# two runs of benches/instructions.rs with different iteration counts, subtracted.
# Needs valgrind. Usage: scripts/instructions.sh [RS256 ES256 EdDSA HS256 floor floor-ES256
# floor-EdDSA layer layer-cached layer-subject layer-cached-subject no-auth]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)"; exit 1; }
# The binary cargo built, wherever CARGO_TARGET_DIR puts it.
binary=$(cargo bench --bench instructions --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
[ -x "$binary" ] || { echo "no instructions binary was built"; exit 1; }
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$binary" "$1" "$2" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
algs=("$@")
[ ${#algs[@]} -eq 0 ] && algs=(RS256 floor ES256 floor-ES256 EdDSA floor-EdDSA HS256 layer layer-cached layer-subject layer-cached-subject no-auth)
for alg in "${algs[@]}"; do
  small=$(count "$alg" 100)
  large=$(count "$alg" 2100)
  echo "$alg: $(( (large - small) / 2000 )) instructions per request"
done
