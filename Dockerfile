# The controller image that `moor install --with-controller` runs (image moor:0.1.0).
# Not built by CI here (this workplace has no container engine): `docker build -t moor:0.1.0 .`
FROM golang:1.26-bookworm AS tools
COPY devcluster/versions.env /versions.env
RUN . /versions.env \
 && CGO_ENABLED=0 GOBIN=/out go install -trimpath -ldflags "-s -w" sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION} \
 && CGO_ENABLED=0 GOBIN=/out go install -trimpath -ldflags "-s -w" helm.sh/helm/v4/cmd/helm@${HELM_VERSION} \
 && CGO_ENABLED=0 GOBIN=/out go install -trimpath -ldflags "-s -w" github.com/getsops/sops/v3/cmd/sops@${SOPS_VERSION}

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client gnupg ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --home-dir /home/moor --create-home moor
COPY --from=tools /out/ /usr/local/bin/
COPY pyproject.toml constraints.txt README.md /src/
COPY src /src/src
RUN pip install --no-cache-dir -c /src/constraints.txt /src && rm -rf /src
ENV MOOR_TOOLS_BIN=/usr/local/bin
USER 65532
ENTRYPOINT ["moor"]
CMD ["run"]
