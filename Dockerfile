# The one unigate image: gateway replicas, the scheme worker, migrations and the simulators all run it
# (docker-compose.yml picks the role with `command`).

# Front-end assets come from npm, pinned by package-lock.json, never copied into the repository.
FROM node:20-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Metadata first, then the packages, so a code change does not invalidate more layers than it must.
COPY pyproject.toml README.md constraints.txt ./
COPY gateway ./gateway
COPY policies ./policies
COPY portal ./portal
# The versions CI tested (constraints.txt), not whatever is newest on the day the image is built.
RUN pip install -c constraints.txt .

# gateway/app.py serves assets from node_modules next to the installed `gateway` package.
COPY --from=assets /build/node_modules /usr/local/lib/python3.11/site-packages/node_modules

# A fixed uid so volume ownership is predictable; var/ is the only place the app writes.
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin unigate \
    && mkdir -p /app/var \
    && chown unigate:unigate /app/var
USER unigate

EXPOSE 8000
CMD ["unigate", "serve", "--host", "0.0.0.0", "--port", "8000"]
