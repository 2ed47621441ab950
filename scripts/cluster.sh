#!/usr/bin/env bash
# A single-node Kubernetes on this machine, inside a network namespace of its own
# (docs/cluster.md). Needs root and what scripts/setup.sh installs.
#
#   scripts/cluster.sh up      start it (idempotent: starts what is not running), push our images
#   scripts/cluster.sh down    stop it, remove its pods, mounts, network namespace and state
#   scripts/cluster.sh env     print the environment that points kubectl and kubectl-contrast at it
#   scripts/cluster.sh exec -- CMD...   run CMD in the node's network namespace
#   scripts/cluster.sh status  which components run
#
# Everything (etcd, control plane, kubelet, kube-proxy, CoreDNS, containerd, registry) runs in the
# network namespace $CONTRAST_CLUSTER_NETNS (default contrast-node). Its only interfaces are a
# veth pair with both ends inside (the node address; also the default route, so traffic to
# anywhere else is dropped) and the pods' bridge: pod and service ranges exist only there and no traffic leaves it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source tools/versions.env
VERSION=$(node -p 'require("./package.json").version')

NS=${CONTRAST_CLUSTER_NETNS:-contrast-node}
DIR=${CONTRAST_CLUSTER_DIR:-$root/.cache/cluster}
NODE=contrast-node
NODE_IP=10.200.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/24
API=https://$NODE_IP:6443
REGISTRY=127.0.0.1:5000
BIN=$root/tools/bin

# No `cmd | grep -q` under pipefail: grep quits at the first match and the writer's SIGPIPE
# would make the pipeline fail.
netns_exists() { [ -e "/run/netns/$1" ]; }
log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
in_ns() { nsenter --net="/run/netns/$NS" -- "$@"; }

pid_alive() { local f="$DIR/pids/$1.pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

# Start a component in the node's network namespace (host mount namespace: the kubelet's volume
# mounts must be visible to containerd and runc), detached, with its log and pid file.
start() { # name command...
  local name=$1; shift
  if pid_alive "$name"; then return; fi
  log "starting $name"
  nsenter --net="/run/netns/$NS" -- setsid "$@" >>"$DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$DIR/pids/$name.pid"
}

wait_for() { # what seconds command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq "$secs"); do "$@" >/dev/null 2>&1 && return; sleep 1; done
  die "$what did not come up in ${secs}s; see $DIR/logs/"
}

kubectl_admin() { in_ns kubectl --kubeconfig "$DIR/kubeconfig/admin.yaml" "$@"; }

preflight() {
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, containerd, kubelet)"
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing: run scripts/setup.sh"
  done
  for c in etcd containerd containerd-shim-runc-v2 runc docker-registry kubectl openssl nsenter iptables ctr; do
    command -v "$c" >/dev/null || die "$c is missing: run scripts/setup.sh"
  done
  [ -x /usr/lib/cni/bridge ] || die "the CNI plugins are missing: run scripts/setup.sh"
}

network() {
  if ! netns_exists "$NS"; then
    log "creating network namespace $NS"
    ip netns add "$NS"
  fi
  ip -n "$NS" link set lo up
  # A veth pair with both ends inside: node0 holds the node address; what is routed to its peer
  # finds no one (the kernel of this machine has no dummy devices).
  ip -n "$NS" link show node0 >/dev/null 2>&1 || ip -n "$NS" link add node0 type veth peer name node0-peer
  ip -n "$NS" link set node0-peer up
  [[ $(ip -n "$NS" addr show dev node0) == *" $NODE_IP/32 "* ]] || ip -n "$NS" addr add "$NODE_IP/32" dev node0
  ip -n "$NS" link set node0 up
  ip -n "$NS" route replace default dev node0
  in_ns sysctl -qw net.ipv4.ip_forward=1
  # Service traffic between pods on the one bridge must pass iptables (kube-proxy's DNAT).
  modprobe br_netfilter 2>/dev/null || true
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && in_ns sysctl -qw net.bridge.bridge-nf-call-iptables=1 || true
}

# --- certificates and kubeconfigs ---------------------------------------------------------
cert() { # name subject [extensions]
  local name=$1 subj=$2 ext=${3:-} d="$DIR/pki"
  [ -f "$d/$name.crt" ] && return
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/$name.key" 2>/dev/null
  openssl req -new -key "$d/$name.key" -subj "$subj" -out "$d/$name.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" ${ext:+"$ext"} > "$d/$name.ext"
  openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 3650 -sha256 -extfile "$d/$name.ext" -out "$d/$name.crt" 2>/dev/null
  rm -f "$d/$name.csr" "$d/$name.ext"
}

kubeconfig() { # name cert
  cat > "$DIR/kubeconfig/$1.yaml" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: contrast, cluster: {server: $API, certificate-authority: $DIR/pki/ca.crt}}]
users: [{name: $1, user: {client-certificate: $DIR/pki/$2.crt, client-key: $DIR/pki/$2.key}}]
contexts: [{name: contrast, context: {cluster: contrast, user: $1, namespace: default}}]
current-context: contrast
EOF
}

pki() {
  local d="$DIR/pki"
  mkdir -p "$d" "$DIR/kubeconfig"
  chmod 700 "$d"
  if [ ! -f "$d/ca.crt" ]; then
    log "creating the cluster CA and certificates"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$d/ca.key" -subj "/CN=contrast-playground-ca" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$d/ca.crt" 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/sa.key" 2>/dev/null
    openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  fi
  local server="extendedKeyUsage=serverAuth" client="extendedKeyUsage=clientAuth"
  cert apiserver "/CN=kube-apiserver" "$server
subjectAltName=IP:$NODE_IP,IP:10.96.0.1,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert kubelet-serving "/CN=$NODE" "$server
subjectAltName=IP:$NODE_IP,DNS:$NODE"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
  cert admin "/O=system:masters/CN=kubernetes-admin" "$client"
  cert kubelet "/O=system:nodes/CN=system:node:$NODE" "$client"
  cert controller-manager "/CN=system:kube-controller-manager" "$client"
  cert scheduler "/CN=system:kube-scheduler" "$client"
  cert kube-proxy "/CN=system:kube-proxy" "$client"
  cert coredns "/CN=system:coredns" "$client"
  for u in admin kubelet controller-manager scheduler kube-proxy coredns; do kubeconfig "$u" "$u"; done
}

# --- configuration files --------------------------------------------------------------------
# Replace a file with standard input only when the content differs: kube-proxy exits when its
# configuration file changes (measured), so a second `up` must leave unchanged files alone.
put() { # file
  cat > "$1.new"
  if cmp -s "$1.new" "$1"; then rm -f "$1.new"; else mv "$1.new" "$1"; fi
}

configs() {
  mkdir -p "$DIR/etc" "$DIR/cni/net.d" "$DIR/registry"
  # Runtime handlers a node installer added (blocks between its markers) survive a second `up`.
  local installed=""
  [ -f "$DIR/etc/containerd.toml" ] && installed=$(awk '/^# BEGIN kubectl-contrast /{on=1} on{print} /^# END kubectl-contrast /{on=0}' "$DIR/etc/containerd.toml")
  cat > "$DIR/etc/containerd.toml.gen" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
# A node installer adds its runtime handler to this file, not through imports: containerd 1.6
# replaces a plugin's whole table with an imported one, so a drop-in with a CRI runtime would
# drop this CRI configuration (measured: the CRI plugin then fails to load).
[grpc]
  address = "$DIR/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "ghcr.io/kubectl-contrast/pause:v${VERSION}"
  # The sandbox may not lower oom_score_adj; without this every pod sandbox fails with
  # "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
  # Our images come from the registry in the namespace, under their own names.
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."ghcr.io"]
    endpoint = ["http://$REGISTRY"]
EOF
  [ -z "$installed" ] || printf '\n%s\n' "$installed" >> "$DIR/etc/containerd.toml.gen"
  put "$DIR/etc/containerd.toml" < "$DIR/etc/containerd.toml.gen"
  rm -f "$DIR/etc/containerd.toml.gen"
  put "$DIR/cni/net.d/10-contrast.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "contrast", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$DIR/cni/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
EOF
  put "$DIR/etc/registry.yml" <<EOF
version: 0.1
storage: {filesystem: {rootdirectory: $DIR/registry}, delete: {enabled: true}}
http: {addr: $REGISTRY}
log: {level: warn}
EOF
  : > "$DIR/etc/resolv.conf"
  put "$DIR/etc/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroups v1 without systemd, and a node that is itself inside a container:
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
# Without pod cgroups (cgroupsPerQOS: false) the in-place resize check dereferences a pod cgroup
# that does not exist: the kubelet panicked in doPodResizeAction on a pod with a RuntimeClass
# overhead (measured, v1.34.4). Nothing here resizes pods in place.
featureGates:
  InPlacePodVerticalScaling: false
failSwapOn: false
containerRuntimeEndpoint: unix://$DIR/containerd/containerd.sock
address: $NODE_IP
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
tlsCertFile: $DIR/pki/kubelet-serving.crt
tlsPrivateKeyFile: $DIR/pki/kubelet-serving.key
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: $DIR/pki/ca.crt}}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [$NODE_IP]
resolvConf: $DIR/etc/resolv.conf
podCIDR: $POD_CIDR
# A development machine's disk is often fuller than a node's: evict only when it is nearly full.
evictionHard: {memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%"}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
EOF
  put "$DIR/etc/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $DIR/kubeconfig/kube-proxy.yaml}
hostnameOverride: $NODE
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Replies of a pod to a pod on the same bridge come back through the node: masquerade.
iptables: {masqueradeAll: true}
# The namespace cannot change the host's conntrack table size.
conntrack: {maxPerCore: 0}
EOF
  put "$DIR/etc/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $DIR/kubeconfig/coredns.yaml contrast
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    # No forward: names outside the cluster do not resolve (nothing leaves the namespace).
}
EOF
}

# containerd runs under a loop that restarts it: a node installer restarts containerd after
# adding its runtime handler, as on a real node.
supervise_containerd() {
  exec nsenter --net="/run/netns/$NS" -- setsid bash -c "
    trap 'kill \$child 2>/dev/null; exit 0' TERM
    while :; do
      containerd --config '$DIR/etc/containerd.toml' >> '$DIR/logs/containerd.log' 2>&1 &
      child=\$!; echo \$child > '$DIR/pids/containerd-daemon.pid'
      wait \$child; echo \"[cluster] containerd exited (\$?), restarting\" >> '$DIR/logs/containerd.log'; sleep 1
    done"
}

up() {
  preflight
  mkdir -p "$DIR/logs" "$DIR/pids" "$DIR/etcd"
  network
  pki
  configs
  start etcd etcd --name "$NODE" --data-dir "$DIR/etcd" --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster "$NODE=http://127.0.0.1:2380" --quota-backend-bytes 1073741824
  start registry docker-registry serve "$DIR/etc/registry.yml"
  if ! pid_alive containerd; then
    log "starting containerd"
    supervise_containerd >/dev/null 2>&1 </dev/null &
    echo $! > "$DIR/pids/containerd.pid"
  fi
  wait_for etcd 60 in_ns curl -sf http://127.0.0.1:2379/health
  start kube-apiserver "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port=6443 \
    --tls-cert-file="$DIR/pki/apiserver.crt" --tls-private-key-file="$DIR/pki/apiserver.key" --client-ca-file="$DIR/pki/ca.crt" \
    --kubelet-client-certificate="$DIR/pki/apiserver-kubelet-client.crt" --kubelet-client-key="$DIR/pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$DIR/pki/ca.crt" --kubelet-preferred-address-types=InternalIP --authorization-mode=Node,RBAC --allow-privileged=true \
    --service-cluster-ip-range="$SERVICE_CIDR" --service-account-key-file="$DIR/pki/sa.pub" --service-account-signing-key-file="$DIR/pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc --enable-priority-and-fairness=false --profiling=false --v=1
  wait_for kube-apiserver 180 kubectl_admin get --raw /readyz
  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$DIR/kubeconfig/controller-manager.yaml" \
    --authentication-kubeconfig="$DIR/kubeconfig/controller-manager.yaml" --authorization-kubeconfig="$DIR/kubeconfig/controller-manager.yaml" \
    --service-account-private-key-file="$DIR/pki/sa.key" --root-ca-file="$DIR/pki/ca.crt" --use-service-account-credentials=true \
    --cluster-signing-cert-file="$DIR/pki/ca.crt" --cluster-signing-key-file="$DIR/pki/ca.key" --service-cluster-ip-range="$SERVICE_CIDR" \
    --leader-elect=false --bind-address=127.0.0.1 --profiling=false
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$DIR/kubeconfig/scheduler.yaml" \
    --authentication-kubeconfig="$DIR/kubeconfig/scheduler.yaml" --authorization-kubeconfig="$DIR/kubeconfig/scheduler.yaml" \
    --leader-elect=false --bind-address=127.0.0.1 --profiling=false
  wait_for containerd 60 ctr --address "$DIR/containerd/containerd.sock" version
  # The policy settings of this node (scripts/node-settings.ts): its containerd's version and
  # the capabilities containerd can give a privileged container.
  local cap_bnd
  cap_bnd=$(awk '/^CapBnd:/{print $2}' "/proc/$(cat "$DIR/pids/containerd-daemon.pid")/status")
  node --import=tsx scripts/node-settings.ts "$(containerd --version | awk '{print $3}')" "$cap_bnd" > "$DIR/policy-settings.json.gen"
  put "$DIR/policy-settings.json" < "$DIR/policy-settings.json.gen"
  rm -f "$DIR/policy-settings.json.gen"
  start kubelet "$BIN/kubelet" --config="$DIR/etc/kubelet.yaml" --kubeconfig="$DIR/kubeconfig/kubelet.yaml" --hostname-override="$NODE" \
    --node-ip="$NODE_IP" --root-dir="$DIR/kubelet" --cert-dir="$DIR/kubelet/pki"
  start kube-proxy "$BIN/kube-proxy" --config="$DIR/etc/kube-proxy.yaml"
  kubectl_admin apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
  - {apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch]}
  - {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:coredns"}]
EOF
  start coredns "$BIN/coredns" -conf "$DIR/etc/Corefile"
  wait_for "node $NODE" 120 kubectl_admin wait --for=condition=Ready "node/$NODE" --timeout=1s
  if [ "${CONTRAST_CLUSTER_IMAGES:-1}" = 1 ]; then
    log "building and pushing our images (npm run images)"
    in_ns node --import=tsx scripts/images/build.ts --out "$DIR/images" --push "$REGISTRY/kubectl-contrast" >/dev/null
  fi
  log "ready: node $NODE; run: eval \"\$(scripts/cluster.sh env)\""
}

# Stop every process this script started (by its pid file), then the pods' shims and
# containers, then unmount what they left and remove the namespace and state.
down() {
  [ "$(id -u)" -eq 0 ] || die "needs root"
  local sock="$DIR/containerd/containerd.sock"
  for name in coredns kube-proxy kubelet kube-scheduler kube-controller-manager; do stop "$name"; done
  if [ -S "$sock" ] && command -v ctr >/dev/null; then
    for task in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do ctr --address "$sock" -n k8s.io tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true; done
  fi
  stop containerd
  stop containerd-daemon
  # Shims outlive containerd: the ones of this node name its socket on their command line.
  for pid in $(shims_of "$sock"); do kill -9 "$pid" 2>/dev/null || true; done
  for name in kube-apiserver registry etcd; do stop "$name"; done
  if [ -d "$DIR" ]; then
    { grep -o " $DIR/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  for n in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do
    # Pod namespaces of this node: their bridge peer is gone with the node's namespace.
    [[ $(ip -n "$n" link show eth0 2>/dev/null) == *"link-netns $NS"* ]] && ip netns delete "$n" || true
  done
  netns_exists "$NS" && ip netns delete "$NS" || true
  rm -rf "$DIR/etcd" "$DIR/containerd" "$DIR/kubelet" "$DIR/cni/ipam" "$DIR/registry" "$DIR/pids" "$DIR/images" "$DIR/runtime" "$DIR/etc/containerd.toml"
  log "down"
}

shims_of() { # containerd socket: the pids of containerd-shim-runc-v2 processes serving it
  local p cmd
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null) || continue
    case "$cmd" in containerd-shim-runc-v2\ *"-address $1 "*|/usr/bin/containerd-shim-runc-v2\ *"-address $1 "*) echo "${p#/proc/}" ;; esac
  done
}

stop() { # name
  local f="$DIR/pids/$1.pid" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $1"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

env_() {
  cat <<EOF
export KUBECONFIG=$DIR/kubeconfig/admin.yaml
# The image lock of the images this cluster's registry holds (built by 'up').
export CONTRAST_IMAGE_LOCK=$DIR/images/image-lock.json
# runtime apply --platform insecure-sim: where the node keeps the runtime, containerd's file.
export CONTRAST_RUNTIME_DIR=$DIR/runtime
export CONTRAST_CONTAINERD_CONFIG=$DIR/etc/containerd.toml
# The node's simulated root (its public key), which set/verify check the Coordinator against.
export CONTRAST_INSECURE_SIM_DIR=$DIR/runtime/insecure-sim-root
# Policy settings that match this node's containerd: copy to <workspace>/settings.json.
export CONTRAST_CLUSTER_POLICY_SETTINGS=$DIR/policy-settings.json
# The API server is only reachable inside the namespace: prefix commands with
#   scripts/cluster.sh exec --   (or: nsenter --net=/run/netns/$NS --)
EOF
}

status() {
  for name in etcd registry containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns; do
    if pid_alive "$name"; then echo "$name running (pid $(cat "$DIR/pids/$name.pid"))"; else echo "$name stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) env_ ;;
  status) status ;;
  exec) shift; [ "${1:-}" = -- ] && shift; exec nsenter --net="/run/netns/$NS" -- "$@" ;;
  *) echo "usage: scripts/cluster.sh up|down|env|status|exec -- CMD..." >&2; exit 2 ;;
esac
