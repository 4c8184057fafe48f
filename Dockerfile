# keruta_actors: the log-streaming agent, as a container.
#   docker build -t keruta-actors .
#   docker run --rm -e KERUTA_TASK_ID=T -e KERUTA_WEBSOCKET_URL=wss://... keruta-actors start -- ./job.sh
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system keruta && useradd --system --gid keruta --home-dir /home/keruta --create-home keruta

WORKDIR /opt/keruta-actors
COPY pyproject.toml README.md ./
# settings.toml (the defaults) is inside the package; the top-level one links to it
COPY keruta_actors ./keruta_actors
RUN pip install .

USER keruta
WORKDIR /home/keruta

# Prometheus metrics and /health (monitoring.prometheus.port); configure with
# KERUTA_* environment variables, e.g. KERUTA_MONITORING__BINDADDRESS=0.0.0.0
# to let the kubelet reach the probe.
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9090/health', timeout=4).status != 200)"

ENTRYPOINT ["python", "-m", "keruta_actors"]
CMD ["start"]
