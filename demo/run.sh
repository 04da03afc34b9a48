#!/usr/bin/env bash
# The Moor demo: a local control plane, a Git repository holding examples/, Moor keeping the
# guestbook's dev overlay true in the cluster, then a new commit landing, then the guestbook published
# to a local OCI registry and its staging overlay synced from there, a new image spotted in the registry
# and committed to Git by the image automation, and a chart installed from a chart repository. Run by `make demo`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work="$root/.demo"
moor="$root/.venv/bin/moor"
tools="${MOOR_TOOLS_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/moor/tools}/current/bin"
kubectl="$(readlink -f "$tools/kubectl")"
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
registry="" charts=""
trap 'kill $controller $registry $charts 2>/dev/null; wait $controller $registry $charts 2>/dev/null || true' EXIT
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

say "CI publishes the guestbook to an OCI registry (moor push artifact: no cluster credentials); Moor syncs staging from there"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'version: 0.1\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: "127.0.0.1:%s"}\nlog: {level: warn}\n' \
  "$work/registry" "$port" >"$work/registry.yaml"
"$(readlink -f "$tools/registry")" serve "$work/registry.yaml" >"$work/registry.log" 2>&1 &
registry=$!
python3 -c 'import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v2/", timeout=1)
        break
    except OSError:
        time.sleep(0.1)' "$port"
echo "a CNCF distribution registry on 127.0.0.1:$port (log $work/registry.log)"
"$moor" push artifact "oci://127.0.0.1:$port/guestbook:1.0.0" --path "$work/checkout/guestbook" --insecure-http \
  --source "file://$work/git/examples.git" --revision "main@sha1:$(git -C "$work/checkout" rev-parse HEAD)"
"$kubectl" apply -f - <<YAML
apiVersion: moor.dev/v1
kind: OCIRepository
metadata: {name: guestbook, namespace: moor-system}
spec:
  url: oci://127.0.0.1:$port/guestbook
  ref: {semver: ">=1.0.0 <2.0.0"}
  insecure: true
---
apiVersion: moor.dev/v1
kind: Sync
metadata: {name: guestbook-staging, namespace: moor-system}
spec:
  sourceRef: {kind: OCIRepository, name: guestbook}
  path: ./overlays/staging
YAML
"$moor" reconcile sync guestbook-staging -n moor-system --with-source
"$moor" get sources -n moor-system
"$kubectl" get deployments -n guestbook-staging

say "CI pushes a new image; Moor spots it, commits the new tag to Git, and the Sync rolls it out"
crane="$(readlink -f "$tools/crane")"
tar -cf "$work/empty-layer.tar" -T /dev/null
for tag in 6.7.1 6.8.0; do
  "$crane" append --insecure -f "$work/empty-layer.tar" -t "127.0.0.1:$port/podinfo:$tag" >/dev/null 2>&1
done
echo "pushed 127.0.0.1:$port/podinfo:6.7.1 and :6.8.0"
"$kubectl" apply -f - <<YAML
apiVersion: moor.dev/v1
kind: ImageRepository
metadata: {name: podinfo, namespace: moor-system}
spec:
  image: 127.0.0.1:$port/podinfo
  insecure: true
  interval: 1m
---
apiVersion: moor.dev/v1
kind: ImagePolicy
metadata: {name: podinfo, namespace: moor-system}
spec:
  imageRepositoryRef: {name: podinfo}
  policy: {semver: {range: ">=6.0.0 <7.0.0"}}
---
apiVersion: moor.dev/v1
kind: ImageUpdate
metadata: {name: examples, namespace: moor-system}
spec:
  sourceRef: {kind: GitRepository, name: examples}
  update: {path: ./guestbook}
  git:
    commit:
      author: {name: Moor image automation, email: moor@example.com}
YAML
"$moor" reconcile image-repository podinfo -n moor-system
"$moor" get images -n moor-system
for _ in $(seq 1 120); do
  git -C "$work/checkout" pull -q --rebase origin main 2>/dev/null || true
  grep -q "newTag: 6.8.0" "$work/checkout/guestbook/overlays/dev/kustomization.yaml" && break
  sleep 0.5
done
git -C "$work/checkout" log -1 --format='%h %an: %B' | sed '/^$/d'
"$moor" reconcile sync guestbook-dev -n moor-system --with-source
echo "web runs $("$kubectl" get deployment web -n guestbook-dev -o jsonpath='{.spec.template.spec.containers[0].image}')"

say "A third-party chart from a Helm chart repository: a newer version inside the range rolls in like a commit"
mkdir -p "$work/charts"
cp -r "$root/examples/charts/guestbook-cache" "$work/guestbook-cache"
"$(readlink -f "$tools/helm")" package "$work/guestbook-cache" -d "$work/charts" >/dev/null
"$(readlink -f "$tools/helm")" repo index "$work/charts"
charts_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$charts_port" --bind 127.0.0.1 --directory "$work/charts" >"$work/charts.log" 2>&1 &
charts=$!
python3 -c 'import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/index.yaml", timeout=1)
        break
    except OSError:
        time.sleep(0.1)' "$charts_port"
echo "a chart repository on http://127.0.0.1:$charts_port (helm repo index)"
"$kubectl" create namespace guestbook-cache --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
"$kubectl" apply -f - <<YAML
apiVersion: moor.dev/v1
kind: HelmRepository
metadata: {name: demo-charts, namespace: moor-system}
spec:
  url: http://127.0.0.1:$charts_port
---
apiVersion: moor.dev/v1
kind: Sync
metadata: {name: guestbook-cache, namespace: moor-system}
spec:
  sourceRef: {kind: HelmRepository, name: demo-charts}
  chart: {name: guestbook-cache, version: ">=0.1.0 <1.0.0"}
  targetNamespace: guestbook-cache
  helm:
    values: {replicas: 2}
YAML
"$moor" reconcile sync guestbook-cache -n moor-system --with-source
sed -i 's/^version: 0.1.0/version: 0.2.0/; s/^appVersion: "7.2"/appVersion: "7.4"/' "$work/guestbook-cache/Chart.yaml"
sed -i 's/cache:7.2/cache:7.4/' "$work/guestbook-cache/values.yaml"
"$(readlink -f "$tools/helm")" package "$work/guestbook-cache" -d "$work/charts" >/dev/null
"$(readlink -f "$tools/helm")" repo index "$work/charts"
echo "guestbook-cache 0.2.0 published"
"$moor" reconcile sync guestbook-cache -n moor-system --with-source
"$moor" history sync guestbook-cache -n moor-system
"$kubectl" get deployment guestbook-cache -n guestbook-cache -o jsonpath='{.spec.template.spec.containers[0].image}{"\n"}'

say "Done. The cluster keeps running: KUBECONFIG=$KUBECONFIG; stop it with 'make demo-down'."
echo "See it all in the dashboard: KUBECONFIG=$KUBECONFIG $moor ui   (prints its address; your own kubeconfig)"
