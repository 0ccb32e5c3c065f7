import { uuidv7 } from 'uuidv7';
import { Conflict, NotFound, UpstreamFailed } from '../../errors.ts';
import type { Cipher } from '../../platform/crypto/cipher.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { Logger } from '../../platform/observability/logger.ts';
import type { Projects } from '../projects/index.ts';
import { checkServerUrl } from './address.ts';
import { createListingCache } from './cache.ts';
import { listTools, type Endpoint, type RemoteTool } from './connection.ts';
import { createMcpRepository, type McpOwner } from './repository.ts';
import { describeFailure, toolNameOf } from './names.ts';
import { mcpToolSource } from './source.ts';
import type { McpServerRow } from './schema.ts';
import type { McpSettings } from './settings.ts';

export interface McpDeps {
  db: Db;
  cipher: Cipher;
  projects: Pick<Projects, 'exists'>;
  settings: McpSettings;
  logger: Logger;
}

export interface ServerInput {
  name: string;
  url: string;
  description?: string | null;
  /** Header name → value, sent with every request; null clears them. */
  credentials?: Record<string, string> | null;
  allowedTools?: string[] | null;
  enabled?: boolean;
  needsApproval?: boolean;
}

/** A server's tool as the routes show it: its own name, the name the model sees, and whether it is offered. */
export interface ServerTool extends RemoteTool {
  toolName: string;
  allowed: boolean;
  disabled: boolean;
}

/** A failed listing is remembered this long at most, so a server that is down costs a turn its time limit once in a while, not every time. */
const FAILURE_CACHE_MS = 15_000;
/** Tools one user may switch off: the list is read at every turn. */
const MAX_DISABLED_TOOLS = 1_000;

const credentialContext = (serverId: string) => `mcp:${serverId}`;

/**
 * MCP servers of projects and users: registration (URL checked against the
 * private ranges, headers encrypted), their tool listings (cached), and each
 * user's switched-off tools. A server of another user, or of a project the
 * caller does not own, is as missing as one that does not exist.
 */
export function createMcp(d: McpDeps) {
  const repo = createMcpRepository(d.db);
  const limits = { allowPrivate: d.settings.allowPrivate, maxResponseBytes: d.settings.maxResponseBytes };

  async function ownerOf(userId: string, projectId: string | null): Promise<McpOwner> {
    if (projectId === null) return { userId };
    if (!(await d.projects.exists(userId, projectId))) throw NotFound('Project', 'project_not_found');
    return { projectId };
  }

  async function server(userId: string, projectId: string | null, id: string): Promise<McpServerRow> {
    const row = await repo.get(await ownerOf(userId, projectId), id);
    if (!row) throw NotFound('MCP server', 'mcp_server_not_found');
    return row;
  }

  async function ensureNameFree(owner: McpOwner, name: string, exceptId?: string) {
    if (await repo.nameTaken(owner, name, exceptId)) throw Conflict(`There is already an MCP server named "${name}" here`, 'mcp_server_name_taken');
  }

  const encryptCredentials = (id: string, headers: Record<string, string> | null | undefined) =>
    headers && Object.keys(headers).length ? d.cipher.encrypt(JSON.stringify(headers), credentialContext(id)) : null;

  function endpointOf(row: McpServerRow): Endpoint {
    const headers = row.credentialsEnc ? (JSON.parse(d.cipher.decrypt(row.credentialsEnc, credentialContext(row.id)).toString()) as Record<string, string>) : {};
    return { url: row.url, headers };
  }

  // Listings per server, keyed by the row's version too: a server changed in any process is asked again.
  const cache = createListingCache(d.settings.cacheMaxBytes);

  function forget(serverId: string) {
    cache.delete(serverId);
  }

  /** Lists now, within the listing time limit; rejects with what went wrong (a credential that cannot be read too). */
  async function listNow(row: McpServerRow): Promise<RemoteTool[]> {
    const { tools, leftOut } = await listTools(endpointOf(row), limits, AbortSignal.timeout(d.settings.listTimeoutMs));
    if (leftOut.length) d.logger.warn({ serverId: row.id, url: row.url, leftOut: leftOut.slice(0, 20), count: leftOut.length }, 'an MCP server listed malformed tools: they were left out');
    return tools;
  }

  function remember(row: McpServerRow, tools: Promise<RemoteTool[] | null>, ttl: number) {
    cache.set(row.id, row.updatedAt.getTime(), tools, ttl);
  }

  /** The server's tools from the cache, or listed once for every caller waiting; null when it cannot be listed (logged). */
  function cachedTools(row: McpServerRow): Promise<RemoteTool[] | null> {
    const hit = cache.get(row.id, row.updatedAt.getTime());
    if (hit) return hit;
    const tools = listNow(row).then(
      (list) => list,
      (err) => {
        d.logger.warn({ serverId: row.id, url: row.url, reason: describeFailure(err, d.settings.listTimeoutMs) }, 'an MCP server could not list its tools');
        // Remembered for less long than a good listing.
        cache.shorten(row.id, tools, Math.min(d.settings.cacheMs, FAILURE_CACHE_MS));
        return null;
      },
    );
    remember(row, tools, d.settings.cacheMs);
    return tools;
  }

  async function create(userId: string, projectId: string | null, input: ServerInput): Promise<McpServerRow> {
    const owner = await ownerOf(userId, projectId);
    const limitReached = () => Conflict(`At most ${d.settings.maxServers} MCP servers here: remove one first`, 'mcp_server_limit');
    // Counted here too, so a full owner is told so before the address is looked up.
    if ((await repo.count(owner)) >= d.settings.maxServers) throw limitReached();
    const url = await checkServerUrl(input.url, d.settings.allowPrivate);
    await ensureNameFree(owner, input.name);
    const id = uuidv7();
    try {
      // Counted again as the row is recorded: registrations side by side each saw room before the others took it
      // (the owner's registrations take turns here; the address lookup stays outside).
      return await inTransaction(d.db, async (tx) => {
        const txRepo = createMcpRepository(tx);
        await txRepo.lockOwner(owner);
        if ((await txRepo.count(owner)) >= d.settings.maxServers) throw limitReached();
        return txRepo.create({
          id,
          userId,
          projectId,
          name: input.name,
          url,
          description: input.description ?? null,
          credentialsEnc: encryptCredentials(id, input.credentials),
          allowedTools: input.allowedTools ?? null,
          enabled: input.enabled ?? true,
          needsApproval: input.needsApproval ?? false,
        });
      });
    } catch (err) {
      // Two creations with one name at once: the unique index decides.
      await ensureNameFree(owner, input.name);
      throw err;
    }
  }

  async function update(userId: string, projectId: string | null, id: string, patch: Partial<ServerInput>): Promise<McpServerRow> {
    const owner = await ownerOf(userId, projectId);
    const row = await repo.get(owner, id);
    if (!row) throw NotFound('MCP server', 'mcp_server_not_found');
    const values: Parameters<typeof repo.update>[1] = {};
    if (patch.url !== undefined) values.url = await checkServerUrl(patch.url, d.settings.allowPrivate);
    if (patch.name !== undefined && patch.name !== row.name) {
      await ensureNameFree(owner, patch.name, id);
      values.name = patch.name;
    }
    if (patch.description !== undefined) values.description = patch.description;
    if (patch.credentials !== undefined) values.credentialsEnc = encryptCredentials(id, patch.credentials);
    if (patch.allowedTools !== undefined) values.allowedTools = patch.allowedTools;
    if (patch.enabled !== undefined) values.enabled = patch.enabled;
    if (patch.needsApproval !== undefined) values.needsApproval = patch.needsApproval;
    const updated = (await repo.update(id, values))!;
    forget(id);
    return updated;
  }

  return {
    create,
    get: server,
    async list(userId: string, projectId: string | null, page: { limit: number; cursor?: string }): Promise<McpServerRow[]> {
      return repo.list(await ownerOf(userId, projectId), page);
    },
    update,
    async delete(userId: string, projectId: string | null, id: string): Promise<void> {
      if (!(await repo.delete(await ownerOf(userId, projectId), id))) throw NotFound('MCP server', 'mcp_server_not_found');
      forget(id);
    },
    /** Deletes every server the user registered before `before` (their own and their projects'); returns their ids. */
    async deleteAllOf(userId: string, before: Date): Promise<string[]> {
      const ids = await repo.deleteAllOf(userId, before);
      ids.forEach(forget);
      return ids;
    },

    /** What the server offers now (asked, not cached; the cache takes the answer), marked allowed and switched off for this user. */
    async serverTools(userId: string, projectId: string | null, id: string): Promise<ServerTool[]> {
      const row = await server(userId, projectId, id);
      let tools: RemoteTool[];
      try {
        tools = await listNow(row);
      } catch (err) {
        throw UpstreamFailed(describeFailure(err, d.settings.listTimeoutMs), 'mcp_server_unavailable');
      }
      remember(row, Promise.resolve(tools), d.settings.cacheMs);
      const off = new Set((await repo.disabledTools(userId)).map((t) => t.toolName));
      return tools.map((t) => {
        const toolName = toolNameOf(row.name, t.name);
        return { ...t, toolName, allowed: row.allowedTools === null || row.allowedTools.includes(t.name), disabled: off.has(toolName) };
      });
    },

    disabledTools: (userId: string, page: { limit: number; after?: string }) => repo.disabledTools(userId, page),
    async disableTool(userId: string, toolName: string): Promise<void> {
      if ((await repo.countDisabledTools(userId)) >= MAX_DISABLED_TOOLS) throw Conflict(`At most ${MAX_DISABLED_TOOLS} tools switched off: switch some on again first`, 'mcp_disabled_limit');
      await repo.disableTool(userId, toolName);
    },
    async enableTool(userId: string, toolName: string): Promise<void> {
      await repo.enableTool(userId, toolName);
    },

    /** The tools of a turn (the module's `tools`); it alone reads the credentials. */
    toolSource: mcpToolSource({
      async offeredTo(userId, projectId) {
        // A project's servers (and the credentials they carry) act only for whoever may manage it, whatever scope a caller hands in.
        const [mayUse, disabled] = await Promise.all([projectId ? d.projects.exists(userId, projectId) : false, repo.disabledTools(userId)]);
        const rows = await repo.enabledFor(userId, mayUse ? projectId : null);
        const servers = await Promise.all(rows.map(async (row) => ({ row, tools: (await cachedTools(row)) ?? [] })));
        return { servers, disabled: new Set(disabled.map((t) => t.toolName)) };
      },
      endpointOf,
      limits,
      timeoutMs: d.settings.timeoutMs,
      logger: d.logger,
    }),
  };
}

export type Mcp = ReturnType<typeof createMcp>;
