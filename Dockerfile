# syntax=docker/dockerfile:1
# tokengate image. Mount the config at /etc/tokengate/gateway.yaml; give secrets as environment
# variables ({ env: NAME }) or mounted files ({ file: /run/secrets/name }).
# See docs/operations.md "Docker image"; deploy/docker/gateway.yaml is a config for it.
# scripts/check-image.ts runs these steps outside Docker (.ci/run calls it).

# Production dependencies only.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# Build: all dependencies, compile TypeScript to dist/ and bundle the console into dist/console.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY console ./console
COPY scripts/build-console.ts ./scripts/
RUN npm run build

# Runtime: no compiler, no dev dependencies, no npm cache; files owned by root, run as node.
FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    TOKENGATE_CONFIG=/etc/tokengate/gateway.yaml \
    TOKENGATE_ADMIN_PORT=9090
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8080 9090
# The admin listener must be reachable on 127.0.0.1 inside the container (admin.host 127.0.0.1 or
# 0.0.0.0) on $TOKENGATE_ADMIN_PORT: write admin.port as ${TOKENGATE_ADMIN_PORT:-9090}.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.TOKENGATE_ADMIN_PORT+'/healthz',{signal:AbortSignal.timeout(2000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node handles SIGTERM itself (graceful drain); give `docker stop -t` more than listen.drainTimeoutMs.
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve"]
