import { Conflict, NotFound, ValidationError } from '../../errors.ts';
import type { Announce } from '../../platform/bus/bus.ts';
import { randomToken, sha256Hex } from '../../platform/crypto/cipher.ts';
import { inTransaction, type Db } from '../../platform/db/database.ts';
import type { Jobs } from '../jobs/index.ts';
import type { UsersService } from '../users/index.ts';
import type { Access } from './access.ts';
import { need } from './access.ts';
import type { LinkRow, ShareRole, ShareRow } from './schema.ts';
import { createSharingRepository, type SharePosition } from './sharing-repository.ts';
import { unshared } from './unshared.ts';

const LINK_PREFIX = 'pdl_';

export type ShareView = ShareRow & { email: string };

/**
 * Sharing: with other users by email, in a role (the owner decides), and by
 * link (a token shown once, only its hash kept; expiring, revocable). A new
 * reader hears of it through `document.shared`; a removed one is told to the
 * other modules as `document.unshared` (queued with the removal, see unshared.ts).
 */
export function createSharing(d: {
  db: Db;
  access: Access;
  users: Pick<UsersService, 'byEmail' | 'byId'>;
  announce: Announce;
  /** Queues `document.unshared` in the removal's transaction. */
  jobs: Pick<Jobs, 'enqueue'>;
  /** A reader's role changed (null: removed), after the change is stored. */
  roleChanged: (documentId: string, userId: string, role: ShareRole | null) => Promise<void>;
  /** Links that may open one document at once (DOCUMENTS_MAX_LINKS_PER_DOCUMENT). */
  maxLinks: number;
  /** Days a revoked or expired link stays listed (DOCUMENTS_LINK_HISTORY_DAYS; 0: for ever). */
  linkHistoryDays: number;
}) {
  const repo = createSharingRepository(d.db);

  /** Removes the share, and queues its announcement in the same transaction; false when there was none. */
  async function removeShare(documentId: string, readerId: string): Promise<boolean> {
    const removed = await inTransaction(d.db, async (tx) => {
      if (!(await repo.unshare(documentId, readerId, tx))) return false;
      await unshared.announce(d.jobs, { documentId, userId: readerId }, tx);
      return true;
    });
    if (removed) await d.roleChanged(documentId, readerId, null);
    return removed;
  }

  async function withEmail(share: ShareRow): Promise<ShareView> {
    return { ...share, email: (await d.users.byId(share.userId))?.email ?? '' };
  }

  return {
    /** Those of these users who may read the document: its owner and those it is shared with (who may be mentioned, who hear of saves and presence). */
    readersAmong: (documentId: string, userIds: readonly string[]) => repo.readersAmong(documentId, userIds),

    /** Oldest first, a page at a time, with each reader's email (read with the shares, in one query). */
    async list(userId: string, id: string, page: { limit: number; after?: SharePosition }): Promise<Array<ShareView & { position: SharePosition }>> {
      await d.access.forUser(userId, id, 'owner', 'see who the document is shared with');
      return repo.shares(id, page);
    },

    /** Shares with the account of this email, or changes its role there; `created` when it is new. */
    async share(userId: string, id: string, input: { email: string; role: ShareRole }): Promise<{ share: ShareView; created: boolean }> {
      const { doc } = await d.access.forUser(userId, id, 'owner', 'share this document');
      const user = await d.users.byEmail(input.email);
      if (!user) throw NotFound('User with that email', 'user_not_found');
      if (user.id === doc.ownerId) throw ValidationError('You own this document: it cannot be shared with you', 'cannot_share_with_self');
      const put = await repo.putShare(id, user.id, input.role);
      if (!put) throw Conflict('The share was removed while this request changed it: try again', 'share_changed');
      const { row, before } = put;
      if (before !== input.role) d.announce('document.shared', { userId: user.id, documentId: id, role: input.role, sharedBy: userId, title: doc.title });
      if (before && before !== input.role) await d.roleChanged(id, user.id, input.role);
      return { share: { ...row, email: user.email }, created: !before };
    },

    async setRole(userId: string, id: string, readerId: string, role: ShareRole): Promise<ShareView> {
      await d.access.forUser(userId, id, 'owner', 'change who the document is shared with');
      const row = await repo.setRole(id, readerId, role);
      if (!row) throw NotFound('Share', 'share_not_found');
      await d.roleChanged(id, readerId, role);
      return withEmail(row);
    },

    /** The owner removes a reader, or a reader leaves. */
    async unshare(userId: string, id: string, readerId: string): Promise<void> {
      const grant = await d.access.forUser(userId, id);
      if (readerId !== userId) need(grant, 'owner', 'remove others from this document');
      if (!(await removeShare(id, readerId))) throw NotFound('Share', 'share_not_found');
    },

    async createLink(userId: string, id: string, input: { role: 'viewer' | 'commenter'; expiresIn?: number }): Promise<LinkRow & { token: string }> {
      await d.access.forUser(userId, id, 'owner', 'create share links');
      const token = `${LINK_PREFIX}${randomToken(24)}`;
      const expiresAt = input.expiresIn ? new Date(Date.now() + input.expiresIn * 1000) : null;
      const row = await repo.insertLink({ documentId: id, tokenHash: sha256Hex(token), last4: token.slice(-4), role: input.role, expiresAt }, d.maxLinks);
      if (!row) throw Conflict(`At most ${d.maxLinks} share links may open a document: revoke one first`, 'link_limit');
      return { ...row, token };
    },

    /** Oldest first, a page at a time, revoked and expired ones included until they are purged. */
    async links(userId: string, id: string, page: { limit: number; after?: string }): Promise<LinkRow[]> {
      await d.access.forUser(userId, id, 'owner', 'see share links');
      return repo.links(id, page);
    },

    /**
     * For `user.reclaimed`: the owner's documents are no longer shared with anyone they were shared with before
     * `before`, nor open by a link made before it (whoever held the account then chose those readers).
     */
    async unshareAllMadeBefore(ownerId: string, before: Date): Promise<{ shares: number; links: number }> {
      const shares = await repo.sharesMadeBefore(ownerId, before);
      for (const { documentId, userId } of shares) {
        await removeShare(documentId, userId);
      }
      return { shares: shares.length, links: await repo.revokeLinksMadeBefore(ownerId, before) };
    },

    async revokeLink(userId: string, id: string, linkId: string): Promise<void> {
      await d.access.forUser(userId, id, 'owner', 'revoke share links');
      if (!(await repo.revokeLink(id, linkId))) throw NotFound('Share link', 'link_not_found');
    },

    /**
     * Links revoked or expired over DOCUMENTS_LINK_HISTORY_DAYS ago are deleted (create-and-revoke would otherwise
     * grow a document's rows for ever); none with 0. Their token is then an unknown one (404).
     */
    purgeEndedLinks: async (now = new Date()) => (d.linkHistoryDays ? repo.purgeLinksEndedBefore(new Date(now.getTime() - d.linkHistoryDays * 86_400_000)) : 0),
  };
}

export type Sharing = ReturnType<typeof createSharing>;
