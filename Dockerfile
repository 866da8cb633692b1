# The monitor as a container sidecar: slim Python, non-root, runtime dependencies only.
# Config comes from mounted /etc/monitor/checks and /etc/monitor/messages (the image carries the
# shipped examples there as a starting point); state lives in the /var/lib/monitor volume.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY checks ./checks
COPY messages ./messages
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/monitor monitor
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY checks /etc/monitor/checks
COPY messages /etc/monitor/messages
ENV MONITOR_CONFIG=/etc/monitor/checks \
    MONITOR_MESSAGES=/etc/monitor/messages \
    MONITOR_DB=/var/lib/monitor/monitor.db \
    MONITOR_LISTEN=0.0.0.0:9108 \
    PYTHONUNBUFFERED=1
USER 10001
VOLUME ["/var/lib/monitor"]
EXPOSE 9108
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=2)"]
# SIGTERM stops probing, lets in-flight sends finish or stay in the outbox, and exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["monitor"]
CMD ["run"]
