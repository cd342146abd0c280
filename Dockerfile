# syntax=docker/dockerfile:1
# Tangent for production. Two final images:
#   docker build -t tangent .                 # CPU: tfjs wasm/cpu backends
#   docker build -t tangent:gpu --target gpu .  # NVIDIA GPU: @tensorflow/tfjs-node-gpu on CUDA 11.8 + cuDNN 8
# Both run the compiled build (dist/, no TypeScript at run time) as the unprivileged user `node`,
# serve on 0.0.0.0:$PORT (4000), keep the embedded database in /data unless DATABASE_URL is set,
# and report health from /healthz.
#
# Install scripts: every npm command here passes --ignore-scripts (package.json's allowScripts
# denies all six that the tree has; the node:20 images ship npm 10, which does not read
# allowScripts), except the GPU stage's, where tfjs-node-gpu's script fetches libtensorflow.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: all dependencies (tsc, vite), then `npm run build` into dist/ -----------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts also skips `prepare` (the build), which runs below once the sources are here.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts ./scripts
COPY web ./web
# dist/: the server (tsc), the embedded database's initdb dump (scripts/pglite-initdb.ts), the IDE (vite).
RUN npm run build

# --- production dependencies only -----------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- the CPU image ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000 TANGENT_DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# dist/ has src/'s layout, so what a module reads relative to itself is here: package.json (version),
# schema.graphql, prisma/migrations, dist/platform/db/pglite-initdb-*.tar.gz, dist/web/ide (the IDE).
COPY package.json schema.graphql ./
COPY prisma/migrations ./prisma/migrations
COPY bin ./bin
COPY --from=build /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 4000
# A fresh /data initialises the embedded database on first start: hence the start period.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "bin/tangent.js"]
CMD ["serve"]

# --- GPU dependencies: the production tree plus tfjs-node-gpu (and its own dependencies only) ---
# --omit=dev keeps npm from adding the lockfile's dev tree (366 packages) alongside it; installing
# with package arguments does not run the root project's `prepare`.
FROM node:20-bookworm AS gpu-deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY --from=deps /app/node_modules ./node_modules
RUN npm install --omit=dev --no-save --no-audit --no-fund --foreground-scripts @tensorflow/tfjs-node-gpu@4.22.0

# --- the GPU image ---------------------------------------------------------------------------
FROM nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04 AS gpu
COPY --from=node:20-bookworm-slim /usr/local/bin/node /usr/local/bin/node
RUN useradd --create-home --uid 1000 node && mkdir -p /data && chown node:node /data
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000 TANGENT_DATA_DIR=/data TANGENT_BACKEND=tensorflow
WORKDIR /app
COPY --from=gpu-deps /app/node_modules ./node_modules
COPY package.json schema.graphql ./
COPY prisma/migrations ./prisma/migrations
COPY bin ./bin
COPY --from=build /app/dist ./dist
USER node
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "bin/tangent.js"]
CMD ["serve"]
