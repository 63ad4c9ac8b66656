# openkvs with ffmpeg: `openkvs serve` (the API, by default) or `openkvs worker`.
#   docker build -t openkvs .
#   docker run --rm openkvs openkvs doctor
# compose.yaml runs a whole fleet from it (PostgreSQL, MinIO, an API, two workers).
FROM python:3.12-slim-bookworm

# ffmpeg/ffprobe do the media work; setpriv (util-linux, already in the base image) makes
# them die with their worker.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/openkvs --shell /usr/sbin/nologin openkvs

WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
# boto3 (S3 storage) comes with the package; the postgres extra adds psycopg.
RUN pip install --no-cache-dir ".[postgres]" && rm -rf /build

USER openkvs
WORKDIR /var/lib/openkvs
# Scratch files of running tasks (and SQLite/local buckets when used alone) go here.
ENV OPENKVS_DATA_DIR=/var/lib/openkvs/data \
    PYTHONUNBUFFERED=1
EXPOSE 8000
# SIGTERM drains: the API stops accepting requests, workers finish or release their tasks
# within OPENKVS_DRAIN_SECONDS (give `docker stop` a longer --time).
STOPSIGNAL SIGTERM
CMD ["openkvs", "serve", "--host", "0.0.0.0", "--port", "8000"]
