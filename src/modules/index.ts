import { adminModule } from './admin/index.ts';
import { aiModule } from './ai/index.ts';
import { aiJobsModule } from './ai-jobs/index.ts';
import { apiKeysModule } from './api-keys/index.ts';
import { auditModule } from './audit/index.ts';
import { authModule } from './auth/index.ts';
import { chatModule } from './chat/index.ts';
import { consoleModule } from './console/index.ts';
import { documentsModule } from './documents/index.ts';
import { exportModule } from './export/index.ts';
import { filesModule } from './files/index.ts';
import { healthModule } from './health/index.ts';
import { jobsModule } from './jobs/index.ts';
import { knowledgeModule } from './knowledge/index.ts';
import { limitsModule } from './limits/index.ts';
import { mcpModule } from './mcp/index.ts';
import type { Module } from './module.ts';
import { notificationsModule } from './notifications/index.ts';
import { projectsModule } from './projects/index.ts';
import { realtimeModule } from './realtime/index.ts';
import { safetyModule } from './safety/index.ts';
import { sandboxModule } from './sandbox/index.ts';
import { toolsModule } from './tools/index.ts';
import { usageModule } from './usage/index.ts';
import { usersModule } from './users/index.ts';
import { webhooksModule } from './webhooks/index.ts';

/**
 * Every capability of Parley, in the order their services are built (a module
 * needs only services of modules before it). app.ts, the service wiring,
 * the worker's schedules, config loading and the schema list all loop over
 * this list: adding a module is its folder and one line here.
 */
export const MODULES: readonly Module[] = [
  auditModule,
  usersModule,
  jobsModule,
  apiKeysModule,
  authModule,
  limitsModule,
  projectsModule,
  toolsModule,
  mcpModule,
  usageModule,
  safetyModule,
  filesModule,
  aiModule,
  aiJobsModule,
  documentsModule,
  knowledgeModule,
  chatModule,
  notificationsModule,
  webhooksModule,
  sandboxModule,
  adminModule,
  exportModule,
  realtimeModule,
  healthModule,
  consoleModule,
];
