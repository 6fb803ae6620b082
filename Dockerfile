# Trafi Core: one image for every process of a deployment (compose.yaml, docs/deploy.md).
# The entrypoint is `trafi`; the command is its arguments: `docker run trafi-core relay run`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY domain ./domain
COPY commands ./commands
COPY queries ./queries
COPY projections ./projections
COPY autopilot ./autopilot
COPY api ./api
RUN pip install . \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/trafi trafi

# Embedded mode's files (not used with PostgreSQL and TRAFI_SECRET_KEY set).
ENV TRAFI_DATA_DIR=/var/lib/trafi
WORKDIR /var/lib/trafi
USER trafi

EXPOSE 8000
ENTRYPOINT ["trafi"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
