# syntax=docker/dockerfile:1
# Tangent for production. Two final images:
#   docker build -t tangent .                 # CPU: tfjs wasm/cpu backends
#   docker build -t tangent:gpu --target gpu .  # NVIDIA GPU: @tensorflow/tfjs-node-gpu on CUDA 11.8 + cuDNN 8
# Both run as the unprivileged user `node`, serve on 0.0.0.0:4000 and expect DATABASE_URL.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- dependencies, without dev tools --------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# --- the CPU image ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000 TANGENT_DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json schema.graphql ./
COPY bin ./bin
COPY prisma ./prisma
COPY src ./src
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=5s CMD node -e "fetch('http://127.0.0.1:4000/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/tangent.js"]
CMD ["serve"]

# --- GPU dependencies: tfjs-node-gpu's install downloads libtensorflow (allowed here, not at run time)
FROM node:20-bookworm AS gpu-deps
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
RUN npm install --no-save --no-audit --no-fund --foreground-scripts @tensorflow/tfjs-node-gpu@4.22.0

# --- the GPU image ---------------------------------------------------------------------------
FROM nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04 AS gpu
COPY --from=node:20-bookworm-slim /usr/local/bin/node /usr/local/bin/node
RUN useradd --create-home --uid 1000 node && mkdir -p /data && chown node:node /data
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000 TANGENT_DATA_DIR=/data TANGENT_BACKEND=tensorflow
WORKDIR /app
COPY --from=gpu-deps /app/node_modules ./node_modules
COPY package.json package-lock.json schema.graphql ./
COPY bin ./bin
COPY prisma ./prisma
COPY src ./src
USER node
EXPOSE 4000
ENTRYPOINT ["node", "bin/tangent.js"]
CMD ["serve"]
