#!/usr/bin/env bash
# The main job on a fresh machine, offline: set up, then `generate` the sample app with the
# committed sample images. Results go to out/sample/ (resources.yaml, manifest.json, keys).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=out/sample
mkdir -p "$out"
node bin/kubectl-contrast generate \
  --platform "${PLATFORM:-metal-qemu-snp}" \
  --workspace-dir "$out" \
  --oci-layout samples/images --offline \
  -o "$out/resources.yaml" \
  samples/plain
echo "resources: $out/resources.yaml"
echo "manifest:  $out/manifest.json"
