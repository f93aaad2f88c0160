# im: the Slack incident bot and its PagerDuty connector, as one image.
#
#   docker build -t im .
#   docker run --rm --env-file im.env im im db upgrade     # release step: migrate once, before new replicas start
#   docker run -d --env-file im.env -p 3000:3000 im        # then serve (CMD below)
#
# im.env holds the settings (docs/im.env.example lists them). Terminal commands run the same way:
#   docker run --rm --env-file im.env im im status
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed, unprivileged user: files it writes on a mounted volume keep one owner across rebuilds.
RUN groupadd --system --gid 10001 im \
    && useradd --system --uid 10001 --gid im --home-dir /var/lib/im --create-home --shell /usr/sbin/nologin im

WORKDIR /opt/im
COPY pyproject.toml ./
COPY bot ./bot
COPY commands ./commands
COPY integrations ./integrations
RUN pip install . && rm -rf /opt/im/build

USER im
# The SQLite default (./im.db) lands in the user's home; with several replicas set IM_DATABASE_URL=postgresql://...
WORKDIR /var/lib/im
ENV IM_HOST=0.0.0.0 \
    IM_PORT=3000
EXPOSE 3000

# python, not curl: the slim image has no curl, and /healthz answers 503 when the database does not.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('IM_PORT', '3000') + '/healthz', timeout=4)"]

CMD ["im", "serve"]
