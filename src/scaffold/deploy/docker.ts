import {stringify} from 'yaml'
import {settings} from '../../config/schema.js'
import {usageError} from '../../errors.js'
import type {ScaffoldFile} from './files.js'

export type DockerOptions = {
  /** the app's image, and the port it listens on inside its container */
  appImage: string
  appPort: number
  /** the port `run` is published on */
  port: number
  /** the build context: a checkout of the audit-logs repository (package-lock.json, src/), relative to the compose file */
  context: string
  /** the written Dockerfile, relative to the context (compose resolves it from there) */
  dockerfile: string
  dbName: string
}

/**
 * The image of audit-logs itself: built from its source (the context), compiled in a first stage,
 * and run from a second that holds only the production dependencies, as a user without privileges.
 */
export const DOCKERFILE = `# audit-logs (written by \`audit-logs scaffold docker\`). Build context: the audit-logs source.
FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: prepare compiles, before the sources are here; the build below does it
RUN npm ci --ignore-scripts
COPY . .
RUN npm run build

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /opt/audit-logs
COPY package.json package-lock.json ./
# --ignore-scripts: the prepare script would compile, which the build stage did. The embedded PostgreSQL's
# binaries are not set up either: in a container the database is a server (AUDIT_LOGS_DATABASE_URL)
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY --from=build /src/oclif.manifest.json ./
COPY bin ./bin
COPY migrations ./migrations
COPY templates ./templates
RUN ln -s /opt/audit-logs/bin/run.js /usr/local/bin/audit-logs \\
 && groupadd --system audit-logs && useradd --system --gid audit-logs --home-dir /var/lib/audit-logs audit-logs \\
 && mkdir -p /var/lib/audit-logs/logs /var/lib/audit-logs/data && chown -R audit-logs:audit-logs /var/lib/audit-logs
USER audit-logs
WORKDIR /var/lib/audit-logs
ENV AUDIT_LOGS_DATA_DIR=/var/lib/audit-logs/data AUDIT_LOGS_LOG_DIR=/var/lib/audit-logs/logs AUDIT_LOGS_BIND=0.0.0.0:8000
EXPOSE 8000
# SIGTERM (docker stop) drains and flushes: give it longer than shutdownTimeoutMs with \`docker stop -t\` / stop_grace_period
ENTRYPOINT ["audit-logs"]
CMD ["run"]
`

/** The compose file (pure): the app, audit-logs run in front of it, PostgreSQL, and setup-db once before run. */
export function renderCompose(o: DockerOptions): string {
  const dbName = settings.dbName.schema.safeParse(o.dbName)
  if (!dbName.success || !o.dbName)
    throw usageError(`--db-name: ${dbName.error?.issues[0]?.message ?? 'a database name'}; got "${o.dbName}"`)
  if (!/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/.test(o.appImage))
    throw usageError(`--app-image must be an image reference such as registry.example.com/shop:1.4; got "${o.appImage}"`)
  const pg = 'postgres'
  // the owner role setup-db makes: run also creates the coming partitions (every 6 hours), which the writer may not
  const ownerUrl = `postgres://${o.dbName}_owner:\${AUDIT_LOGS_OWNER_PASSWORD}@${pg}:5432/${o.dbName}`
  const doc = {
    name: 'audit-logs',
    services: {
      app: {
        image: o.appImage,
        restart: 'unless-stopped',
        environment: {PORT: String(o.appPort)},
        // reached only through audit: no port published
        expose: [String(o.appPort)],
      },
      audit: {
        build: {context: o.context, dockerfile: o.dockerfile},
        image: 'audit-logs:local',
        restart: 'unless-stopped',
        command: ['run'],
        environment: {
          AUDIT_LOGS_UPSTREAM: `http://app:${o.appPort}`,
          AUDIT_LOGS_BIND: '0.0.0.0:8000',
          AUDIT_LOGS_DATABASE_URL: ownerUrl,
          AUDIT_LOGS_DB_NAME: o.dbName,
          AUDIT_LOGS_LOG_DIR: '/var/lib/audit-logs/logs',
          AUDIT_LOGS_DATA_DIR: '/var/lib/audit-logs/data',
        },
        ports: [`${o.port}:8000`],
        volumes: ['audit-logs:/var/lib/audit-logs/logs', 'audit-journal:/var/lib/audit-logs/data'],
        // longer than shutdownTimeoutMs (10 s by default): the journal is flushed before the container stops
        stop_grace_period: '40s',
        depends_on: {
          app: {condition: 'service_started'},
          postgres: {condition: 'service_healthy'},
          'setup-db': {condition: 'service_completed_successfully'},
        },
      },
      'setup-db': {
        image: 'audit-logs:local',
        build: {context: o.context, dockerfile: o.dockerfile},
        // once per start; idempotent: a second run changes nothing
        command: ['setup-db', '--db-name', o.dbName],
        restart: 'no',
        environment: {
          AUDIT_LOGS_ADMIN_URL: `postgres://postgres:\${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}@${pg}:5432/postgres`,
          AUDIT_LOGS_DATABASE_URL: `postgres://postgres:\${POSTGRES_PASSWORD}@${pg}:5432/postgres`,
          AUDIT_LOGS_OWNER_PASSWORD: '${AUDIT_LOGS_OWNER_PASSWORD:?set AUDIT_LOGS_OWNER_PASSWORD in .env}',
          AUDIT_LOGS_WRITER_PASSWORD: '${AUDIT_LOGS_WRITER_PASSWORD:?set AUDIT_LOGS_WRITER_PASSWORD in .env}',
          AUDIT_LOGS_READER_PASSWORD: '${AUDIT_LOGS_READER_PASSWORD:?set AUDIT_LOGS_READER_PASSWORD in .env}',
        },
        depends_on: {postgres: {condition: 'service_healthy'}},
      },
      postgres: {
        image: 'postgres:17',
        restart: 'unless-stopped',
        environment: {POSTGRES_PASSWORD: '${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}'},
        volumes: ['postgres-data:/var/lib/postgresql/data'],
        healthcheck: {
          test: ['CMD-SHELL', 'pg_isready -U postgres -d postgres'],
          interval: '5s',
          timeout: '5s',
          retries: 20,
          start_period: '10s',
        },
      },
    },
    volumes: {'audit-logs': {}, 'audit-journal': {}, 'postgres-data': {}},
  }
  return (
    '# audit-logs in front of the app, with PostgreSQL (written by `audit-logs scaffold docker`).\n' +
    '# The passwords come from .env next to this file (never committed): POSTGRES_PASSWORD,\n' +
    '# AUDIT_LOGS_OWNER_PASSWORD, AUDIT_LOGS_WRITER_PASSWORD, AUDIT_LOGS_READER_PASSWORD (e.g. `openssl rand -hex 24`).\n' +
    '# Start: docker compose up -d --build   (setup-db runs first, once, then run starts)\n' +
    stringify(doc, {lineWidth: 0, version: '1.1'})
  )
}

export function dockerFiles(o: DockerOptions): ScaffoldFile[] {
  return [
    {name: 'Dockerfile', text: DOCKERFILE},
    {name: 'compose.yaml', text: renderCompose(o)},
    {
      // BuildKit reads the ignore file next to the Dockerfile: the context (the source) is left as it is
      name: 'Dockerfile.dockerignore',
      text: 'node_modules\n.audit-logs\nlogs\nscratch\n.git\n*.log\n',
    },
  ]
}
