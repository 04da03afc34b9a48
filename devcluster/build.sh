#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
# etcd, kwok), the renderers (kustomize, helm) and sops + age (encrypted Secrets) from their Go
# modules, at the versions pinned in versions.env, into a cache directory outside the work tree.
# Idempotent: a warm run does nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

command -v go >/dev/null || { echo "devcluster: the Go toolchain is not installed (needed to build the control plane); install Go 1.26 or newer" >&2; exit 1; }

tools_root=${MOOR_TOOLS_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/moor/tools}
key=$(cat "$here/versions.env" "$here/build.sh" "$here/etcd/main.go" | sha256sum | cut -c1-16)
dest="$tools_root/$key"
bin="$dest/bin"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kustomize helm sops age age-keygen)

link_current() { ln -sfn "$dest" "$tools_root/current.tmp" && mv -Tf "$tools_root/current.tmp" "$tools_root/current"; }

all_built=true
for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || all_built=false; done
if $all_built; then
  link_current
  exit 0
fi

mkdir -p "$bin" "$dest/work"
step() { printf '[devcluster %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

build_kubernetes() {
  local work="$dest/work/kubernetes" minor upstream
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  mkdir -p "$work"
  upstream=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  # The wrapper module: k8s.io/kubernetes itself, with every staging module that upstream replaces by a
  # ./staging path pinned to its published v0.<minor>.<patch> instead. Generated, never hand-written.
  {
    echo "module moor.dev/devcluster/kubernetes"
    echo
    sed -n 's/^go \(.*\)$/go \1/p' "$upstream"
    sed -n 's/^godebug \(.*\)$/godebug \1/p' "$upstream"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$upstream" |
      while read -r module; do printf '\t%s => %s %s\n' "$module" "$module" "${KUBERNETES_VERSION/v1./v0.}"; done
    echo ")"
  } >"$work/go.mod"
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$bin/$cmd" ] && continue
    step "building $cmd $KUBERNETES_VERSION (cold builds take several minutes)"
    (cd "$work" && go build -trimpath -ldflags "$ldflags" -o "$bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv "$bin/$cmd.tmp" "$bin/$cmd"
  done
}

build_etcd() {
  [ -x "$bin/etcd" ] && return
  local work="$dest/work/etcd"
  mkdir -p "$work"
  cp "$here/etcd/main.go" "$work/main.go"
  printf 'module moor.dev/devcluster/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$work/go.mod"
  step "building etcd $ETCD_VERSION"
  (cd "$work" && go mod tidy >/dev/null && go build -trimpath -ldflags "-s -w" -o "$bin/etcd.tmp" .)
  mv "$bin/etcd.tmp" "$bin/etcd"
}

go_install() { # name module version
  [ -x "$bin/$1" ] && return
  step "building $1 $3"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "$2@$3"
}

build_etcd
go_install kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
go_install kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
go_install helm helm.sh/helm/v4/cmd/helm "$HELM_VERSION"
go_install sops github.com/getsops/sops/v3/cmd/sops "$SOPS_VERSION"
go_install age filippo.io/age/cmd/age "$AGE_VERSION"
go_install age-keygen filippo.io/age/cmd/age-keygen "$AGE_VERSION"
build_kubernetes
link_current
step "all binaries are in $bin"
