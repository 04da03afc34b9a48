#!/usr/bin/env bash
# The Moor demo: a local control plane, a Git repository holding examples/, Moor keeping the
# guestbook's dev overlay true in the cluster, then a new commit landing. Run by `make demo`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work="$root/.demo"
moor="$root/.venv/bin/moor"
kubectl="$(dirname "$(readlink -f "${MOOR_TOOLS_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/moor/tools}/current/bin/kubectl")")/kubectl"
export KUBECONFIG="$work/cluster/kubeconfig"
export GIT_AUTHOR_NAME="Dana Developer" GIT_AUTHOR_EMAIL="dana@example.com"
export GIT_COMMITTER_NAME="Dana Developer" GIT_COMMITTER_EMAIL="dana@example.com"

say() { printf '\n\033[1;34m==>\033[0m \033[1m%s\033[0m\n' "$*"; }
mkdir -p "$work"

say "Starting a local Kubernetes control plane (etcd, kube-apiserver, controllers, kwok nodes)"
# A fresh cluster every time, so the story starts from an empty cluster on every run.
"$moor" cluster down --dir "$work/cluster" >/dev/null 2>&1 || true
"$moor" cluster up --dir "$work/cluster"
"$kubectl" get nodes

say "Pushing examples/ to a Git repository (the single source of truth)"
rm -rf "$work/git" "$work/checkout"
git init -q --bare --initial-branch=main "$work/git/examples.git"
git clone -q "$work/git/examples.git" "$work/checkout" 2>/dev/null
cp -r "$root/examples/." "$work/checkout/"
git -C "$work/checkout" add -A
git -C "$work/checkout" commit -qm "guestbook: first release"
git -C "$work/checkout" push -q origin main
git -C "$work/checkout" log --oneline

say "Installing Moor's CRDs and RBAC, then starting the controller (moor run)"
"$moor" install >/dev/null && echo "CRDs and RBAC installed"
pkill -f "moor run --artifact-dir $work/artifacts" 2>/dev/null || true
"$moor" run --artifact-dir "$work/artifacts" >"$work/moor-run.log" 2>&1 &
controller=$!
trap 'kill $controller 2>/dev/null; wait $controller 2>/dev/null || true' EXIT
echo "controller running (pid $controller, log $work/moor-run.log)"

say "What CI runs on every pull request: moor build renders exactly what the Sync will apply, no cluster needed"
"$moor" build --path "$work/checkout/guestbook/overlays/dev" --target-namespace guestbook-dev | sed -n 1,16p
echo "..."

say "Declaring what to sync: a GitRepository and a Sync of guestbook/overlays/dev"
sed "s#https://git.example.com/moor/examples.git#file://$work/git/examples.git#" "$root/examples/sync.yaml" |
  "$kubectl" apply -f -
"$moor" reconcile sync guestbook-dev -n moor-system --with-source

say "What Moor manages now"
"$moor" get -n moor-system
"$moor" tree sync guestbook-dev -n moor-system
"$kubectl" get deployments,pods -n guestbook-dev

say "Someone edits the cluster by hand: Moor notices from its watch and puts Git's value back"
"$kubectl" patch configmap web-config -n guestbook-dev --type=merge -p '{"data":{"PODINFO_UI_MESSAGE":"edited by hand"}}'
for _ in $(seq 1 100); do
  message=$("$kubectl" get configmap web-config -n guestbook-dev -o jsonpath='{.data.PODINFO_UI_MESSAGE}')
  [ "$message" != "edited by hand" ] && break
  sleep 0.1
done
echo "web-config says again: $message"
"$moor" trace configmap web-config -n guestbook-dev || true

say "A developer merges a change: a new welcome message for the dev environment"
sed -i 's/Welcome to the guestbook (dev)/Welcome to the guestbook, now deployed by Moor (dev)/' \
  "$work/checkout/guestbook/overlays/dev/config.yaml"
git -C "$work/checkout" commit -qam "guestbook(dev): new welcome message"
git -C "$work/checkout" push -q origin main
git -C "$work/checkout" log --oneline -1
"$moor" diff sync guestbook-dev -n moor-system --path "$work/checkout/guestbook/overlays/dev" || true
"$moor" reconcile sync guestbook-dev -n moor-system --with-source
echo "web-config now says: $("$kubectl" get configmap web-config -n guestbook-dev -o jsonpath='{.data.PODINFO_UI_MESSAGE}')"
"$moor" history sync guestbook-dev -n moor-system

say "Done. The cluster keeps running: KUBECONFIG=$KUBECONFIG; stop it with 'make demo-down'."
