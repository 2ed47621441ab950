//go:build tools

// Package tools records the kube-apiserver command as a dependency of this module so that
// `go mod tidy` keeps its requirements; scripts/setup.sh builds it with
// `go build k8s.io/kubernetes/cmd/kube-apiserver`.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
