//go:build tools

// Package tools records the Kubernetes commands as dependencies of this module so that
// `go mod tidy` keeps their requirements; scripts/setup.sh builds kube-apiserver for the API
// tests and, for the local node (scripts/cluster.sh), the other control-plane and node commands
// with `go build k8s.io/kubernetes/cmd/<name>`.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
