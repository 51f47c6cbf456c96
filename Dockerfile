# Build stage: full install (TypeScript, Nest CLI), compile, then drop dev dependencies.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY src ./src
# The Stripe CLI binary (an optional dependency, for tests and local use) is not needed at run time.
RUN npx nest build && npm prune --omit=dev && rm -rf node_modules/@stripe/cli-*

# Runtime stage: compiled code and production dependencies only, as an unprivileged user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000 12111
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# The live heap under load is ~60-100 MB; a cap sized to it makes V8 collect before RSS balloons (see README).
CMD ["node", "--max-old-space-size=160", "dist/main.js"]
