#!/usr/bin/env bash
# The main job on a fresh machine, offline: set up, build our images (npm run images, from the
# .debs setup fetched), then `generate` the sample app with them and the committed sample
# images. Results go to out/sample/ (resources.yaml, manifest.json, keys).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent images -- --out out/images
out=out/sample
mkdir -p "$out"
# The images just built, not the lock of the last release: their digests are what gets injected.
CONTRAST_IMAGE_LOCK=out/images/image-lock.json node bin/kubectl-contrast generate \
  --platform "${PLATFORM:-metal-qemu-snp}" \
  --workspace-dir "$out" \
  --oci-layout out/images --oci-layout samples/images --offline \
  -o "$out/resources.yaml" \
  samples/plain
echo "resources: $out/resources.yaml"
echo "manifest:  $out/manifest.json"
