#!/usr/bin/env bash
# Idempotent set-up of everything the main job and the tests need on a fresh machine:
# Debian packages, npm packages, pinned Go tools (built with the Go toolchain into tools/bin),
# regorus (built with cargo into tools/bin),
# and the compiled CLI. Safe to run again; each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source tools/versions.env

log() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------
apt_packages=(skopeo docker-registry etcd-server containerd runc containernetworking-plugins iptables iproute2)
command -v kubectl >/dev/null 2>&1 || apt_packages+=(kubernetes-client)
# test/servicemesh: network namespaces and the proxy's rules (iproute2, iptables, above),
# openssl s_client/s_server and curl as independent TLS peers.
apt_packages+=(openssl curl)
# test/images/zstd: the zstd CLI compresses the decoder's fixtures (independent output).
apt_packages+=(zstd)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- npm packages ----------------------------------------------------------------------
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# --- Go tools (pinned, built from the Go module proxy into tools/bin, keyed by version) ---
mkdir -p tools/bin
build_go_tool() { # installed-name version package binary-name
  local name=$1 version=$2 pkg=$3 bin=$4 stamp="tools/bin/.$1.version"
  if [ -x "tools/bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then return; fi
  log "building $name $version (go install $pkg@$version)"
  local tmp; tmp=$(mktemp -d)
  GOBIN="$tmp" GOFLAGS=-mod=mod go install "$pkg@$version"
  mv "$tmp/$bin" "tools/bin/$name"
  rm -rf "$tmp"
  echo "$version" > "$stamp"
}
build_go_tool opa "$OPA_VERSION" github.com/open-policy-agent/opa opa
build_go_tool helm3 "$HELM3_VERSION" helm.sh/helm/v3/cmd/helm helm
build_go_tool helm4 "$HELM4_VERSION" helm.sh/helm/v4/cmd/helm helm
build_go_tool kustomize "$KUSTOMIZE_VERSION" sigs.k8s.io/kustomize/kustomize/v5 kustomize
build_go_tool krew "$KREW_VERSION" sigs.k8s.io/krew/cmd/krew krew

# regorus (the Kata agent's Rego engine) for the policy cross-check (test/policy): its CLI is a
# cargo example, built once into tools/bin and keyed by version like the Go tools.
build_regorus() {
  local stamp=tools/bin/.regorus.version
  if [ -x tools/bin/regorus ] && [ "$(cat "$stamp" 2>/dev/null)" = "$REGORUS_VERSION" ]; then return; fi
  command -v cargo >/dev/null 2>&1 || { log "cargo is needed to build regorus $REGORUS_VERSION (apt-get install cargo)"; exit 1; }
  log "building regorus $REGORUS_VERSION (cargo install --locked regorus --example regorus; takes a while)"
  local tmp; tmp=$(mktemp -d)
  cargo install --quiet --locked "regorus@$REGORUS_VERSION" --example regorus --root "$tmp"
  mv "$tmp/bin/regorus" tools/bin/regorus
  rm -rf "$tmp"
  echo "$REGORUS_VERSION" > "$stamp"
}
build_regorus

# Kubernetes commands. k8s.io/kubernetes maps its staging modules with local replace lines, so
# it cannot be `go install`ed; tools/kube-apiserver is a wrapper module that restates them
# against the published versions (go.sum pins everything). kube-apiserver serves the API tests
# (test/kube); the others run the local node of scripts/cluster.sh and the end-to-end test.
build_kube_command() { # command
  local name=$1 stamp="tools/bin/.$1.version"
  if [ -x "tools/bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$KUBERNETES_VERSION" ]; then return; fi
  grep -q "k8s.io/kubernetes $KUBERNETES_VERSION\$" tools/kube-apiserver/go.mod \
    || { log "tools/kube-apiserver/go.mod does not require k8s.io/kubernetes $KUBERNETES_VERSION"; exit 1; }
  log "building $name $KUBERNETES_VERSION (tools/kube-apiserver; takes a while)"
  (cd tools/kube-apiserver && GOFLAGS='-mod=readonly -buildvcs=false' \
    go build -trimpath -ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION" \
      -o "$root/tools/bin/$name" "k8s.io/kubernetes/cmd/$name")
  echo "$KUBERNETES_VERSION" > "$stamp"
}
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do build_kube_command "$cmd"; done

# CoreDNS, the cluster DNS of the local node (a plain Go module).
build_go_tool coredns "$COREDNS_VERSION" github.com/coredns/coredns coredns

# The Debian packages our images are made of (npm run images, test/images/build.test.ts),
# fetched once into .cache/debs/ and checked against their pins.
if ! node --import=tsx scripts/images/build.ts --fetch-only 2>/dev/null; then
  log "apt-get update (the pinned packages of the images are not in the package lists)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  node --import=tsx scripts/images/build.ts --fetch-only
fi

# --- compiled CLI ----------------------------------------------------------------------
log "npm run build"
npm run --silent build
log "ready: $(node bin/kubectl-contrast --version 2>/dev/null | head -n1)"
