import { Forbidden, Gone, NotFound } from '../../errors.ts';
import { sha256Hex } from '../../platform/crypto/cipher.ts';
import type { Db } from '../../platform/db/database.ts';
import type { DocumentsRepository, ReaderView, Role } from './repository.ts';
import type { SharingRepository } from './sharing-repository.ts';
import type { DocumentRow } from './schema.ts';

const RANK: Record<Role, number> = { viewer: 0, commenter: 1, editor: 2, owner: 3 };

/** What one caller may do on one document, and how they came by it. */
export interface Grant {
  userId: string;
  doc: DocumentRow;
  role: Role;
  /** `link`: through a share link's token, which reaches only its own routes. */
  via: 'reader' | 'link';
  view?: ReaderView;
}

export const notFound = () => NotFound('Document', 'document_not_found');

/** Throws 403 unless the grant's role is at least `min` (the caller can read the document: telling them so reveals nothing). */
export function need(grant: Grant, min: Role, what: string): void {
  if (RANK[grant.role] >= RANK[min]) return;
  const who = min === 'owner' ? 'the owner' : `${article(min)} ${min} (or someone above)`;
  throw Forbidden(`Only ${who} may ${what}; you are ${article(grant.role)} ${grant.role} of this document`, 'document_role_too_low');
}

const article = (role: Role) => (role === 'editor' || role === 'owner' ? 'an' : 'a');

/**
 * Who may touch a document. Everyone without a role on it (a stranger, a reader
 * whose share was removed) gets 404, as for a document that does not exist.
 */
export function createAccess(repo: DocumentsRepository, sharing: SharingRepository) {
  return {
    async forUser(userId: string, id: string, min: Role = 'viewer', what = 'do this', tx?: Db): Promise<Grant> {
      const view = await repo.read(userId, id, tx);
      if (!view) throw notFound();
      const grant: Grant = { userId, doc: view.doc, role: view.role, via: 'reader', view };
      need(grant, min, what);
      return grant;
    },

    /** A share link's grant: 404 for a token never issued, 410 once revoked or expired. */
    async forLink(userId: string, token: string, min: Role = 'viewer', what = 'do this'): Promise<Grant> {
      const link = await sharing.linkByHash(sha256Hex(token));
      if (!link) throw NotFound('Share link', 'link_not_found');
      if (link.revokedAt) throw Gone('This share link was revoked', 'link_revoked');
      if (link.expiresAt && link.expiresAt <= new Date()) throw Gone('This share link has expired', 'link_expired');
      const doc = await repo.shown(link.documentId);
      if (!doc) throw NotFound('Share link', 'link_not_found');
      const grant: Grant = { userId, doc, role: link.role, via: 'link' };
      need(grant, min, what);
      return grant;
    },
  };
}

export type Access = ReturnType<typeof createAccess>;
