# Node 24 runs the TypeScript sources directly (type stripping); no build step.
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY core core
COPY jobs jobs
COPY api api
COPY workers workers
COPY migrations migrations
COPY reports reports
# var/ is where a process run on a terminal writes its JSON log (the demo: var/demo.log).
RUN mkdir -p var && chown node:node var
USER node
CMD ["node", "workers/worker.ts"]
