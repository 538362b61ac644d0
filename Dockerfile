# syntax=docker/dockerfile:1
# dubstudio's headless server and queue worker, one image:
#   docker run -e DUBSTUDIO_API_TOKEN=... -p 8080:8080 -v dubstudio:/data dubstudio:0.1.0   the API and a worker on 0.0.0.0
#   (all interfaces need auth configured: DUBSTUDIO_API_TOKEN or DUBSTUDIO_AUTH=supabase)
#   ... dubstudio:0.1.0 serve --headless --host 0.0.0.0 --no-worker  the server alone
#   ... dubstudio:0.1.0 worker                                       a queue worker
# compose.yaml runs the scale-out set (server, workers, PostgreSQL, Redis). Every Python package is pinned
# in packaging/requirements-docker.txt (made by packaging/lock.py); ffmpeg, espeak-ng, libsndfile and the
# pocketsphinx model come inside those wheels, so no system package is installed.
# When releasing, pin the base image by digest too: python:3.11.14-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY packaging/requirements-docker.txt /src/packaging/
RUN python -m venv /opt/dubstudio \
 && /opt/dubstudio/bin/pip install --no-deps -r /src/packaging/requirements-docker.txt
COPY pyproject.toml README.md /src/
COPY dubstudio /src/dubstudio
RUN /opt/dubstudio/bin/pip install --no-deps --no-build-isolation /src \
 && /opt/dubstudio/bin/pip check

FROM ${PYTHON_IMAGE}
RUN useradd --create-home --uid 10001 dubstudio && mkdir /data && chown dubstudio /data
COPY --from=build /opt/dubstudio /opt/dubstudio
ENV PATH=/opt/dubstudio/bin:$PATH PYTHONUNBUFFERED=1 DUBSTUDIO_DATA_DIR=/data DUBSTUDIO_OPEN_BROWSER=false
USER dubstudio
WORKDIR /data
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["dubstudio"]
CMD ["serve", "--headless", "--host", "0.0.0.0"]
