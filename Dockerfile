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

# /metrics, /health and /livez on monitoring.prometheus.port, turned on here.
# They listen on loopback unless KERUTA_MONITORING__BINDADDRESS=0.0.0.0 lets
# Prometheus or the kubelet reach them.
ENV KERUTA_MONITORING__PROMETHEUS__ENABLED=true
EXPOSE 9090
# Liveness, not /health: an agent that falls back to REST or to its spool is
# unhealthy by /health, yet alive, and must not be restarted for it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9090/livez', timeout=4).status != 200)"

ENTRYPOINT ["python", "-m", "keruta_actors"]
CMD ["start"]
