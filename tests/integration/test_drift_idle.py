"""No false drift: a realistic multi-kind app left idle shows zero drift and gets no writes; the watch
that catches drift survives an API server restart without missing a change."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from moor import binaries
from moor.devcluster import ClusterInfo, restart_component
from tests.support.cluster_fixtures import Kubectl
from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import ControllerProcess, Moor

REALISTIC_APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}, annotations: {prometheus.io/scrape: "true"}}
    spec:
      serviceAccountName: web
      containers:
        - name: web
          image: ghcr.io/example/web:1.4.2
          args: [--port=8080]
          ports: [{name: http, containerPort: 8080}]
          env:
            - {name: LOG_LEVEL, value: info}
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
          envFrom: [{configMapRef: {name: web-config}}]
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {cpu: "1", memory: 0.5Gi}
          readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 5}
          livenessProbe: {tcpSocket: {port: 8080}, initialDelaySeconds: 10}
          volumeMounts: [{name: cache, mountPath: /cache}]
      volumes: [{name: cache, emptyDir: {sizeLimit: 1Gi}}]
      tolerations: [{key: dedicated, operator: Equal, value: web, effect: NoSchedule}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
data: {GREETING: hello, MAX_ITEMS: "20"}
---
apiVersion: v1
kind: Secret
metadata: {name: web-secret}
stringData: {token: s3cr3t}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: web-reader}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: web-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: web-reader}
subjects: [{kind: ServiceAccount, name: web}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
        - name: db
          image: postgres:16
          ports: [{containerPort: 5432, name: pg}]
          volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]
  volumeClaimTemplates:
    - metadata: {name: data}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 1Gi}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cleanup}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: cleanup, image: busybox:1.36, command: [sh, -c, "echo clean"]}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 5
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
"""


def resource_versions(moor: Moor) -> dict[str, str]:
    listed = moor.kubectl(
        "get",
        "all,configmaps,secrets,serviceaccounts,roles,rolebindings,pdb,hpa",
        "-n",
        moor.namespace,
        "-l",
        "moor.dev/sync",
        "-o",
        "json",
    ).stdout
    return {
        f"{item['kind']}/{item['metadata']['name']}": item["metadata"]["resourceVersion"]
        for item in json.loads(listed)["items"]
        if item["kind"] not in ("HorizontalPodAutoscaler",)
    }


def test_an_idle_realistic_app_shows_no_drift_and_gets_no_writes(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("app.yaml", REALISTIC_APP)
    git_repo.commit("realistic app")
    git_repo.push()
    # The HPA owns replicas (it may scale), as users declare it.
    moor.source_and_sync(
        git_repo, sync_spec="{wait: false, drift: {mode: alert, ignore: [{kind: Deployment, paths: [/spec/replicas]}]}}"
    )
    moor.wait_condition("sync", "app", "True")
    time.sleep(3)  # controllers settle: Deployments roll out, the StatefulSet creates its claim, the HPA reports
    before = resource_versions(moor)
    for _ in range(3):
        assert moor.reconcile(with_source=False).returncode == 0
    time.sleep(2)
    assert moor.condition("sync", "app", "Drifted") is None, moor.get("sync", "app")["status"].get("drift")
    assert "drift" not in moor.get("sync", "app")["status"]
    assert moor.cli("drift", "sync", "app").returncode == 0
    assert resource_versions(moor) == before, "an idle reconcile writes nothing"


def wait_ready(kubectl: Kubectl, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while kubectl("get", "--raw", "/readyz", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the API server did not come back"
        time.sleep(0.3)


def test_the_watch_survives_an_api_server_restart(
    private_cluster: ClusterInfo, tmp_path: Path, git_repo: GitWorkspace
) -> None:
    kubectl = Kubectl(binaries.locate("kubectl"), private_cluster.kubeconfig)
    kubectl("create", "namespace", "restart")
    moor = Moor(kubectl, private_cluster.kubeconfig, "restart")
    controller = ControllerProcess(private_cluster.kubeconfig, tmp_path / "controller")
    controller.start()
    try:
        data: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"v": "1"}}
        git_repo.write("c.yaml", yaml.safe_dump(data))
        git_repo.commit("c")
        git_repo.push()
        moor.source_and_sync(git_repo)
        moor.wait_condition("sync", "app", "True")

        restart_component(private_cluster.directory, "kube-apiserver")
        wait_ready(kubectl)
        kubectl("patch", "configmap", "c", "-n", "restart", "--type=merge", "-p", '{"data":{"v":"changed"}}')
        moor.wait_for(
            "the change made after the restart to be corrected",
            lambda: moor.get("configmap", "c")["data"] == {"v": "1"},
            timeout=45,
        )
    finally:
        assert controller.stop() == 0
