import { sql } from 'drizzle-orm';
import { boolean, index, jsonb, pgTable, primaryKey, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, time } from '../../platform/db/columns.ts';
import { projects } from '../projects/index.ts';
import { users } from '../users/index.ts';

/**
 * An MCP server whose tools the model may call: a project's (offered in that
 * project's conversations) or a user's own (offered in all of theirs).
 * `name` prefixes its tools (`<name>__<tool>`), unique per owner. The headers
 * sent with every request (an Authorization bearer) are encrypted.
 */
export const mcpServers = pgTable(
  'mcp_servers',
  {
    id: id(),
    /** Who registered it; the owner when `projectId` is null. */
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    projectId: uuid('project_id').references(() => projects.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    url: text('url').notNull(),
    description: text('description'),
    /** AES-256-GCM of the headers' JSON, bound to the server's id; null when none. */
    credentialsEnc: text('credentials_enc'),
    /** The server's tool names offered; null offers every one it lists. */
    allowedTools: text('allowed_tools').array(),
    enabled: boolean('enabled').notNull().default(true),
    /** Each call of its tools waits for the user's approval. */
    needsApproval: boolean('needs_approval').notNull().default(false),
    createdAt: createdAt(),
    updatedAt: time('updated_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('mcp_servers_project_name_key').on(t.projectId, t.name).where(sql`${t.projectId} is not null`),
    uniqueIndex('mcp_servers_user_name_key').on(t.userId, t.name).where(sql`${t.projectId} is null`),
    index('mcp_servers_user_idx').on(t.userId, t.id),
  ],
);

/** MCP tools a user switched off for themselves, by the name the model sees (`<server>__<tool>`). */
export const mcpDisabledTools = pgTable(
  'mcp_disabled_tools',
  {
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    toolName: text('tool_name').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.toolName] })],
);

export type McpServerRow = typeof mcpServers.$inferSelect;
