#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
# etcd, kwok), the renderers (kustomize, helm), sops + age (encrypted Secrets) and the OCI tools the
# tests use (the distribution registry, crane, oras, cosign) from their Go modules, at the versions
# pinned in versions.env, into a cache directory outside the work tree.
#
# Each tool (the four Kubernetes binaries are one) is cached on its own, in builds/<tool>-<key>, where
# the key hashes the tool's name, module, version and the shell function that builds it: changing one
# line of versions.env rebuilds that tool only. current/bin, the one directory Moor reads, links to
# every tool's binaries; current is switched atomically once every tool is there.
# Idempotent: a warm run does nothing and prints nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

command -v go >/dev/null || { echo "devcluster: the Go toolchain is not installed (needed to build the control plane); install Go 1.26 or newer" >&2; exit 1; }

tools_root=${MOOR_TOOLS_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/moor/tools}
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

step() { printf '[devcluster %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# ------------------------------------------------------------------------------------------ recipes
# Each recipe is called as `recipe DIR MODULE VERSION BINARY...` and leaves every BINARY in DIR/bin,
# each moved there only once complete. Everything a recipe's output depends on must be in its
# arguments or its own text: both are in the cache key.

build_kubernetes() {
  local dir=$1 version=$3 minor upstream cmd
  shift 3
  local work="$dir/work"
  minor=$(echo "$version" | cut -d. -f2)
  mkdir -p "$work"
  upstream=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  # The wrapper module: k8s.io/kubernetes itself, with every staging module that upstream replaces by a
  # ./staging path pinned to its published v0.<minor>.<patch> instead. Generated, never hand-written.
  {
    echo "module moor.dev/devcluster/kubernetes"
    echo
    sed -n 's/^go \(.*\)$/go \1/p' "$upstream"
    sed -n 's/^godebug \(.*\)$/godebug \1/p' "$upstream"
    echo
    echo "require k8s.io/kubernetes $version"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$upstream" |
      while read -r module; do printf '\t%s => %s %s\n' "$module" "$module" "${version/v1./v0.}"; done
    echo ")"
  } >"$work/go.mod"
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$version -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  for cmd in "$@"; do
    [ -x "$dir/bin/$cmd" ] && continue
    step "building $cmd $version (cold builds take several minutes)"
    (cd "$work" && go build -trimpath -ldflags "$ldflags" -o "$dir/bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv "$dir/bin/$cmd.tmp" "$dir/bin/$cmd"
  done
}

# etcd's package main is the root of a module with relative replaces: a wrapper module around
# devcluster/etcd/main.go, whose hash the caller passes as an extra argument so it is in the key.
build_etcd() {
  local dir=$1 module=$2 version=$3
  local work="$dir/work"
  mkdir -p "$work"
  cp "$here/etcd/main.go" "$work/main.go"
  printf 'module moor.dev/devcluster/etcd\n\ngo 1.24\n\nrequire %s %s\n' "$module" "$version" >"$work/go.mod"
  step "building etcd $version"
  (cd "$work" && go mod tidy >/dev/null && go build -trimpath -ldflags "-s -w" -o "$dir/bin/etcd.tmp" .)
  mv "$dir/bin/etcd.tmp" "$dir/bin/etcd"
}

go_install() {
  local dir=$1 module=$2 version=$3 binary=$4
  step "building $binary $version"
  mkdir -p "$dir/work"
  GOBIN="$dir/work" go install -trimpath -ldflags "-s -w" "$module@$version"
  mv "$dir/work/$binary" "$dir/bin/$binary"
}

# -------------------------------------------------------------------------------------- the cache
links=()

# tool NAME RECIPE MODULE VERSION BINARY... [-- EXTRA]: builds NAME into its own cache directory
# unless it is complete there, and queues its binaries for current/bin. EXTRA (e.g. a hash of a
# source file the recipe copies) is passed to the recipe and is part of the key.
tool() {
  local name=$1 recipe=$2 module=$3 version=$4 key dir b
  shift 4
  local binaries=() extra=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do binaries+=("$1"); shift; done
  [ $# -gt 0 ] && { shift; extra=("$@"); }
  key=$({ printf '%s\n' "$name" "$module" "$version" "${binaries[@]}" "${extra[@]}" "$GOFLAGS" "$CGO_ENABLED"; declare -f "$recipe"; } | sha256sum | cut -c1-16)
  dir="$tools_root/builds/$name-$key"
  for b in "${binaries[@]}"; do
    if [ ! -x "$dir/bin/$b" ]; then
      mkdir -p "$dir/bin"
      "$recipe" "$dir" "$module" "$version" "${binaries[@]}" "${extra[@]}"
      break
    fi
  done
  for b in "${binaries[@]}"; do
    [ -x "$dir/bin/$b" ] || { echo "devcluster: building $name left no $b in $dir/bin" >&2; exit 1; }
    links+=("builds/$name-$key/bin/$b")
  done
}

# current -> sets/<key of every link>, whose bin/ holds one relative symlink per binary.
link_current() {
  local key set link
  key=$(printf '%s\n' "${links[@]}" | sha256sum | cut -c1-16)
  set="$tools_root/sets/$key"
  if [ ! -d "$set/bin" ]; then
    rm -rf "$set.tmp"
    mkdir -p "$set.tmp/bin"
    for link in "${links[@]}"; do ln -s "../../../$link" "$set.tmp/bin/$(basename "$link")"; done
    mv -T "$set.tmp" "$set"
  fi
  [ "$(readlink "$tools_root/current" 2>/dev/null)" = "sets/$key" ] && return
  ln -sfn "sets/$key" "$tools_root/current.tmp" && mv -Tf "$tools_root/current.tmp" "$tools_root/current"
  step "current/bin now links every binary: $tools_root/current/bin"
}

etcd_main_hash=$(sha256sum <"$here/etcd/main.go" | cut -c1-16)

# Small and quick first, so a failing module shows before the long Kubernetes build.
tool etcd build_etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" etcd -- "$etcd_main_hash"
tool kwok go_install sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" kwok
tool kustomize go_install sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION" kustomize
tool helm go_install helm.sh/helm/v4/cmd/helm "$HELM_VERSION" helm
tool sops go_install github.com/getsops/sops/v3/cmd/sops "$SOPS_VERSION" sops
tool age go_install filippo.io/age/cmd/age "$AGE_VERSION" age
tool age-keygen go_install filippo.io/age/cmd/age-keygen "$AGE_VERSION" age-keygen
tool registry go_install github.com/distribution/distribution/v3/cmd/registry "$DISTRIBUTION_VERSION" registry
tool crane go_install github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION" crane
tool oras go_install oras.land/oras/cmd/oras "$ORAS_VERSION" oras
tool cosign go_install github.com/sigstore/cosign/v3/cmd/cosign "$COSIGN_VERSION" cosign
tool kubernetes build_kubernetes k8s.io/kubernetes "$KUBERNETES_VERSION" kube-apiserver kube-controller-manager kube-scheduler kubectl
link_current
