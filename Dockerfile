# Parley: one image for every role (`serve`, `worker`, `start`, `migrate`).
# Node 24 runs the TypeScript sources directly (type stripping); the image also holds the bundle of them that starts faster.
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY db ./db
COPY src ./src
# npm ci's postinstall ran before src/ was here: make the PGlite templates and the server bundle now.
RUN node src/platform/db/pglite.ts && node src/cli/bundle.ts
# The embedded default (`start` without DATABASE_URL) keeps its database, files and master key in ./data:
# the image's user must own it (the rest of /app stays root's), and it outlives the container.
RUN mkdir -m 0700 /app/data && chown node:node /app/data
VOLUME /app/data
USER node
EXPOSE 3000
# bin/parley.js runs the bundle (current: built after the sources were copied).
ENTRYPOINT ["node", "bin/parley.js"]
CMD ["start"]
