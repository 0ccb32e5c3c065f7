# Parley: one image for every role (`serve`, `worker`, `start`, `migrate`).
# Node 24 runs the TypeScript sources directly (type stripping): no build step.
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY db ./db
COPY src ./src
# npm ci's postinstall ran before src/ was here: write the PGlite initdb template now.
RUN node src/platform/db/pglite.ts
USER node
EXPOSE 3000
ENTRYPOINT ["node", "src/main.ts"]
CMD ["start"]
