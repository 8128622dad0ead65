# syntax=docker/dockerfile:1
# The Sparkify worker (and the `sparkify` CLI). No Spark or Java: the worker only uploads spark/
# to the code root; EMR runs it on the cluster.
#
#   docker build -t sparkify-lake-worker .
#   docker run --rm sparkify-lake-worker node client/bin.js --help
#
# test/compose.test.ts checks that every top-level directory the entry points reach is copied.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# tsx is a runtime dependency, so the production tree is all the worker needs. Installing here
# (not copying the host's node_modules) gets the Linux builds of the native modules
# (Temporal core, swc, esbuild).
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --no-audit --no-fund --loglevel=error

FROM ${NODE_IMAGE} AS runtime
# The Temporal core (Rust) verifies TLS peers such as Temporal Cloud against the OS trust
# store, which the slim image does not ship. (Node's bundled CAs cover the AWS SDK.)
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY config/ ./config/
COPY assets/ ./assets/
COPY workflows/ ./workflows/
COPY activities/ ./activities/
COPY lake/ ./lake/
COPY worker/ ./worker/
COPY client/ ./client/
COPY ui/ ./ui/
COPY spark/ ./spark/
# Root owns the files and the worker cannot change them: the code it uploads to EMR is exactly
# the code in the image.
USER node
# One process (no npx/tsx wrapper), so SIGTERM reaches the worker and it shuts down cleanly.
CMD ["node", "--require", "tsx/cjs", "worker/main.ts"]
