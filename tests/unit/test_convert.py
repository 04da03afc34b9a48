"""`moor convert`: realistic Flux and Argo CD manifests in, Moor objects out, a note per field left behind."""

from __future__ import annotations

from typing import Any

import yaml
from click.testing import CliRunner

from moor.cli.convert import convert
from moor.convert import convert_documents
from moor.resources.gitrepository import GitRepositorySpec
from moor.resources.helmrepository import HelmRepositorySpec
from moor.resources.ocirepository import OCIRepositorySpec
from moor.resources.sync import SyncSpec

FLUX = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: flux-system, namespace: flux-system}
spec:
  interval: 1m0s
  ref: {branch: main}
  secretRef: {name: flux-system}
  url: ssh://git@github.com/acme/fleet
  ignore: |
    /*
    !/clusters
  verify: {mode: HEAD, provider: openpgp, secretRef: {name: pgp-public-keys}}
---
apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: OCIRepository
metadata: {name: podinfo, namespace: flux-system}
spec:
  interval: 5m
  url: oci://ghcr.io/stefanprodan/manifests/podinfo
  ref: {semver: ">=6.0.0"}
  layerSelector: {mediaType: application/vnd.cncf.flux.content.v1.tar+gzip, operation: copy}
  verify: {provider: cosign, secretRef: {name: cosign-pub}}
  provider: aws
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: bitnami, namespace: flux-system}
spec:
  interval: 1h
  url: https://charts.bitnami.com/bitnami
  passCredentials: true
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 10m0s
  retryInterval: 2m
  timeout: 5m
  dependsOn: [{name: infra-controllers}]
  sourceRef: {kind: GitRepository, name: flux-system}
  path: ./apps/production
  prune: true
  wait: true
  targetNamespace: apps
  decryption: {provider: sops, secretRef: {name: sops-age}}
  postBuild:
    substitute: {cluster_env: prod}
  patches:
    - patch: '[{"op": "replace", "path": "/spec/replicas", "value": 3}]'
      target: {kind: Deployment}
  healthCheckExprs:
    - apiVersion: cert-manager.io/v1
      kind: Certificate
      current: status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'True')
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: redis, namespace: flux-system}
spec:
  interval: 10m
  releaseName: cache
  targetNamespace: data
  chart:
    spec:
      chart: redis
      version: 19.x
      sourceRef: {kind: HelmRepository, name: bitnami}
      interval: 1h
  valuesFrom:
    - {kind: ConfigMap, name: redis-values, valuesKey: values.yaml}
    - {kind: Secret, name: redis-password, valuesKey: password, targetPath: auth.password}
  values:
    architecture: standalone
  install: {crds: CreateReplace, remediation: {retries: 3}}
  driftDetection: {mode: enabled}
"""

ARGO = """
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: guestbook, namespace: argocd}
spec:
  project: default
  source:
    repoURL: https://github.com/argoproj/argocd-example-apps.git
    targetRevision: HEAD
    path: guestbook
  destination: {server: https://kubernetes.default.svc, namespace: guestbook}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true]
  ignoreDifferences:
    - group: apps
      kind: Deployment
      jsonPointers: [/spec/replicas]
    - kind: ConfigMap
      jqPathExpressions: [.data.generated]
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: helm-guestbook, namespace: argocd}
spec:
  project: team-a
  source:
    repoURL: https://github.com/argoproj/argocd-example-apps.git
    targetRevision: HEAD
    path: helm-guestbook
    helm:
      valueFiles: [values-production.yaml]
      values: |
        replicaCount: 2
  destination: {name: in-cluster, namespace: helm-guestbook}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: ingress-nginx, namespace: argocd}
spec:
  project: default
  source:
    repoURL: https://kubernetes.github.io/ingress-nginx
    chart: ingress-nginx
    targetRevision: 4.11.2
    helm:
      releaseName: ingress
      valuesObject: {controller: {replicaCount: 2}}
  destination: {server: https://prod.example.com:6443, namespace: ingress-nginx}
  syncPolicy:
    automated: {prune: false}
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: team-a, namespace: argocd}
spec:
  description: Team A
  sourceRepos: ["https://github.com/acme/*"]
  destinations: [{namespace: "team-a-*", server: https://kubernetes.default.svc}]
  clusterResourceWhitelist: [{group: "", kind: Namespace}]
"""


def converted(text: str, **options: Any) -> tuple[dict[tuple[str, str], dict[str, Any]], list[str]]:
    conversion = convert_documents(list(yaml.safe_load_all(text)), **options)
    objects = {(obj["kind"], obj["metadata"]["name"]): obj for obj in conversion.objects}
    return objects, [str(note) for note in conversion.notes]


def has_note(notes: list[str], *words: str) -> bool:
    return any(all(word in note for word in words) for note in notes)


def test_flux_sources_become_moor_sources_that_moor_itself_accepts() -> None:
    objects, notes = converted(FLUX)

    git = objects[("GitRepository", "flux-system")]
    assert git["apiVersion"] == "moor.dev/v1"
    assert git["spec"] == {
        "url": "ssh://git@github.com/acme/fleet",
        "ref": {"branch": "main"},
        "interval": "1m0s",
        "secretRef": {"name": "flux-system"},
        "verify": {"mode": "HEAD", "secretRef": {"name": "pgp-public-keys"}},
    }
    GitRepositorySpec.from_object(git)
    oci = objects[("OCIRepository", "podinfo")]
    assert oci["spec"]["ref"] == {"semver": ">=6.0.0"}
    assert oci["spec"]["verify"] == {"provider": "cosign", "secretRef": {"name": "cosign-pub"}}
    OCIRepositorySpec.from_object(oci)
    HelmRepositorySpec.from_object(objects[("HelmRepository", "bitnami")])
    assert has_note(notes, "GitRepository flux-system/flux-system", "spec.ignore", "every file under the Sync's path")
    assert has_note(notes, "OCIRepository flux-system/podinfo", "spec.layerSelector.operation", "copy")
    assert has_note(notes, "OCIRepository flux-system/podinfo", "spec.provider")
    assert has_note(notes, "HelmRepository flux-system/bitnami", "spec.passCredentials")


def test_a_kustomization_becomes_a_sync_with_what_flux_cannot_hand_over_named() -> None:
    objects, notes = converted(FLUX)

    sync = objects[("Sync", "apps")]
    assert sync["spec"] == {
        "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
        "path": "./apps/production",
        "targetNamespace": "apps",
        "interval": "10m0s",
        "retryInterval": "2m",
        "timeout": "5m",
        "dependsOn": [{"name": "infra-controllers"}],
        "decryption": {"provider": "sops", "secretRef": {"name": "sops-age"}},
        "healthChecks": [
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "current": "status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'True')",
            }
        ],
        "prune": True,
        "wait": True,
    }
    SyncSpec.from_object(sync)
    assert has_note(notes, "Kustomization flux-system/apps", "spec.postBuild", "substitute")
    assert has_note(notes, "Kustomization flux-system/apps", "spec.patches", "kustomization.yaml")


def test_a_helm_release_becomes_a_sync_of_the_chart() -> None:
    objects, notes = converted(FLUX)

    sync = objects[("Sync", "redis")]
    assert sync["spec"]["sourceRef"] == {"kind": "HelmRepository", "name": "bitnami"}
    assert sync["spec"]["chart"] == {"name": "redis", "version": "19.x"}
    assert sync["spec"]["helm"] == {
        "valuesFrom": [{"kind": "ConfigMap", "name": "redis-values", "key": "values.yaml"}],
        "values": {"architecture": "standalone"},
        "releaseName": "cache",
    }
    assert sync["spec"]["targetNamespace"] == "data"
    assert sync["spec"]["drift"] == {"mode": "correct"}
    SyncSpec.from_object(sync)
    assert has_note(notes, "HelmRelease flux-system/redis", "valuesFrom[1].targetPath")
    assert has_note(notes, "HelmRelease flux-system/redis", "spec.install", "no Helm release")
    assert has_note(notes, "HelmRelease flux-system/redis", "spec.chart.spec.interval")


def test_a_helm_release_of_a_chart_in_git_is_a_sync_of_its_path() -> None:
    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"chart": {"spec": {"chart": "./charts/web", "sourceRef": {"kind": "GitRepository", "name": "fleet"}}}},
    }

    conversion = convert_documents([release])

    (sync,) = conversion.objects
    assert sync["spec"]["path"] == "./charts/web"
    assert sync["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "fleet"}


def test_a_kustomization_of_a_bucket_is_not_converted_and_says_so() -> None:
    bucket = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "legacy", "namespace": "flux-system"},
        "spec": {"sourceRef": {"kind": "Bucket", "name": "s3"}, "path": "./", "prune": True, "interval": "5m"},
    }

    conversion = convert_documents([bucket])

    assert conversion.objects == ()
    assert any("no source of kind Bucket" in str(note) for note in conversion.notes)


def test_argo_applications_share_a_git_repository_and_become_syncs() -> None:
    objects, notes = converted(ARGO)

    git = objects[("GitRepository", "guestbook")]
    assert git["spec"] == {"url": "https://github.com/argoproj/argocd-example-apps.git", "ref": {"branch": "main"}}
    assert ("GitRepository", "helm-guestbook") not in objects, "one source for one repository and revision"
    guestbook = objects[("Sync", "guestbook")]
    assert guestbook["spec"] == {
        "sourceRef": {"kind": "GitRepository", "name": "guestbook"},
        "path": "./guestbook",
        "targetNamespace": "guestbook",
        "drift": {"mode": "correct", "ignore": [{"kind": "Deployment", "paths": ["/spec/replicas"]}]},
        "prune": True,
    }
    SyncSpec.from_object(guestbook)
    helm = objects[("Sync", "helm-guestbook")]
    assert helm["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "guestbook"}
    assert helm["spec"]["helm"] == {"valuesFiles": ["values-production.yaml"], "values": {"replicaCount": 2}}
    assert helm["spec"]["approval"] == {"mode": "manual"}
    assert helm["spec"]["prune"] is False
    SyncSpec.from_object(helm)
    assert has_note(notes, "Application argocd/guestbook", "targetRevision", "branch main")
    assert has_note(notes, "Application argocd/guestbook", "jqPathExpressions")
    assert has_note(notes, "Application argocd/guestbook", "CreateNamespace=true")
    assert has_note(notes, "Application argocd/helm-guestbook", "project team-a", "serviceAccountName")


def test_an_argo_chart_application_becomes_a_helm_repository_and_a_sync() -> None:
    objects, notes = converted(ARGO)

    repository = objects[("HelmRepository", "ingress-nginx-charts")]
    assert repository["spec"] == {"url": "https://kubernetes.github.io/ingress-nginx", "type": "default"}
    HelmRepositorySpec.from_object(repository)
    sync = objects[("Sync", "ingress-nginx")]
    assert sync["spec"]["chart"] == {"name": "ingress-nginx", "version": "4.11.2"}
    assert sync["spec"]["helm"] == {"values": {"controller": {"replicaCount": 2}}, "releaseName": "ingress"}
    assert sync["spec"]["drift"]["mode"] == "alert"
    SyncSpec.from_object(sync)
    assert has_note(notes, "Application argocd/ingress-nginx", "prod.example.com", "cluster it runs in")


def test_an_app_project_is_explained_field_by_field() -> None:
    _, notes = converted(ARGO)

    assert has_note(notes, "AppProject argocd/team-a", "spec.destinations", "serviceAccountName")
    assert has_note(notes, "AppProject argocd/team-a", "spec.clusterResourceWhitelist", "ClusterRole")
    assert has_note(notes, "AppProject argocd/team-a", "spec.sourceRepos")


def test_one_namespace_for_everything_moves_the_references_too() -> None:
    objects, _ = converted(FLUX, namespace="moor-system")

    assert {obj["metadata"]["namespace"] for obj in objects.values()} == {"moor-system"}
    assert objects[("Sync", "apps")]["spec"]["dependsOn"] == [{"name": "infra-controllers"}]


def test_other_documents_pass_through_untouched() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}}
    alert = {"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert", "metadata": {"name": "a"}}

    conversion = convert_documents([config, alert])

    assert conversion.objects == (config, alert)
    assert [str(note) for note in conversion.notes] == [
        "Alert a: kind: Moor has no equivalent of Alert: passed through"
    ]


def test_the_command_reads_stdin_and_writes_notes_to_stderr() -> None:
    result = CliRunner().invoke(convert, ["-"], input=FLUX)

    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.stdout))
    assert {doc["kind"] for doc in documents} == {"GitRepository", "OCIRepository", "HelmRepository", "Sync"}
    assert "note: Kustomization flux-system/apps: spec.postBuild" in result.stderr
    assert "note:" not in result.stdout
