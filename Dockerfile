# The Kinship image: the `kinship` CLI (extender, profiler, predictor) with the locked
# dependencies. manifests/ runs it as `kinship serve`; ./kind-cluster.sh builds it.
FROM python:3.11-slim AS build
# The uv release this repository's lock file is written with.
RUN pip install --no-cache-dir uv==0.13.9
# Bytecode compiled here: the root filesystem is read-only in the cluster, and without .pyc files
# every start would compile every dependency again (docs/extender.md, start-up time).
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/kinship
WORKDIR /src
# Dependencies first, so this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project
COPY README.md ./
COPY kinship kinship
COPY extender extender
COPY profiler profiler
COPY predictor predictor
RUN uv sync --locked --no-dev --no-editable

FROM python:3.11-slim
RUN groupadd --system --gid 65532 kinship \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin kinship
# Same base image and path as the build stage: the virtualenv's interpreter link stays valid.
COPY --from=build /opt/kinship /opt/kinship
ENV PATH=/opt/kinship/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8888
ENTRYPOINT ["kinship"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8888"]
