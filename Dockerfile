# syntax=docker/dockerfile:1
# The Sparkify worker (and the `sparkify` CLI), compiled: a build stage runs `npm run build`
# (TypeScript to JavaScript in dist/, laid out like the sources, and the workflow bundle prebuilt),
# and the image runs plain node on the result. No Spark or Java: the worker only uploads the Spark
# code to the code root; EMR runs it.
#
#   docker build -t sparkify-lake-worker .
#   docker run --rm sparkify-lake-worker sparkify --help
#
# test/compose.test.ts checks this file against the code; test/compiled-worker.test.ts lays out
# the final stage's files as this file says and starts the worker from them.

# The AWS SDK for JavaScript needs Node 22 or later for its releases from January 2027; 24 is the
# LTS line supported the longest of those the SDK and Temporal's native core both run on.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Everything, dev dependencies included: the build runs tsx, tsc and the workflow bundler.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.ts ./scripts/
COPY assets/ ./assets/
COPY workflows/ ./workflows/
COPY activities/ ./activities/
COPY lake/ ./lake/
COPY worker/ ./worker/
COPY client/ ./client/
COPY config/ ./config/
COPY warehouse/ ./warehouse/
COPY spark/ ./spark/
COPY ui/ ./ui/
# Compiled with the rest (the CLI's `dev` and `demo` load it), but not copied into the image.
COPY dev/ ./dev/
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# The production tree only (no tsx, TypeScript or test tools), installed here rather than copied
# from a host so that the native modules (Temporal core) are the Linux builds.
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
COPY package.json ./
# The compiled code the worker and the CLI reach, with what it reads beside itself (dist/spark,
# dist/assets/assets.json, dist/warehouse/{migrations,reports,jdbc.json}) and the prebuilt
# workflow bundle (dist/workflows/workflow-bundle.js). Not dist/dev: the dev harness stays out.
COPY --from=build /app/dist/assets ./dist/assets
COPY --from=build /app/dist/workflows ./dist/workflows
COPY --from=build /app/dist/activities ./dist/activities
COPY --from=build /app/dist/lake ./dist/lake
COPY --from=build /app/dist/worker ./dist/worker
COPY --from=build /app/dist/client ./dist/client
COPY --from=build /app/dist/config ./dist/config
COPY --from=build /app/dist/warehouse ./dist/warehouse
COPY --from=build /app/dist/spark ./dist/spark
COPY --from=build /app/dist/ui ./dist/ui
# The PostgreSQL JDBC driver the warehouse load runs with, shipped to EMR with the code bundle
# (warehouse/jdbc.json pins it; test/compose.test.ts checks this line against it).
ADD --chmod=644 --checksum=sha256:73914527305a40cce504b0d3d90b23caf565136912d607ae8ae7c5895512332c \
    https://repo1.maven.org/maven2/org/postgresql/postgresql/42.7.14/postgresql-42.7.14.jar /app/jars/
ENV SPARKIFY_JDBC_JAR=/app/jars/postgresql-42.7.14.jar
# `sparkify <command>` in the container (docker compose exec worker sparkify status).
RUN ln -s /app/dist/client/bin.js /usr/local/bin/sparkify
# Root owns the files and the worker cannot change them: the code it uploads to EMR is exactly
# the code in the image.
USER node
# The worker's memory settings (worker/process-settings.ts; test/compose.test.ts checks these).
ENV MALLOC_ARENA_MAX=2
ENV MALLOC_MMAP_THRESHOLD_=131072
ENV MALLOC_TRIM_THRESHOLD_=131072
# One process (no npm or shell wrapper), so SIGTERM reaches the worker and it shuts down cleanly.
CMD ["node", "--enable-source-maps", "--max-semi-space-size=2", "--max-old-space-size=192", "dist/worker/main.js"]
