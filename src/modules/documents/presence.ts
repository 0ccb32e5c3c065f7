import type { Announce } from '../../platform/bus/bus.ts';
import type { Db } from '../../platform/db/database.ts';
import { need, type Grant } from './access.ts';
import { createPresenceRepository } from './presence-repository.ts';
import type { PresenceRow, ShareRole } from './schema.ts';

export type PresenceState = PresenceRow['state'];

/**
 * Who is viewing or editing a document now. A heartbeat (every ~half the
 * expiry) keeps a reader present; silence past `presenceSeconds` and they
 * are gone: filtered out at once, purged by a schedule, which tells the
 * others they left. Stored in the database, so every instance agrees.
 *
 * Changes (arrived, switched state, left) go out as `document.presence`, one
 * event per change however many readers the document has, onto the
 * `document:<id>` topic, whose readers hear it. A plain renewal is silent.
 */
export function createPresence(d: { db: Db; announce: Announce; presenceSeconds: number }) {
  const repo = createPresenceRepository(d.db);

  function tell(documentId: string, actorId: string, state: PresenceState | 'left') {
    d.announce('document.presence', { userId: actorId, documentId, actorId, state });
  }

  return {
    /** Editing needs the editor role; viewing, any. */
    async beat(grant: Grant, state: PresenceState): Promise<PresenceRow[]> {
      need(grant, state === 'editing' ? 'editor' : 'viewer', state === 'editing' ? 'edit this document' : 'view this document');
      const now = new Date();
      const { changed } = await repo.beat(grant.doc.id, grant.userId, state, new Date(now.getTime() + d.presenceSeconds * 1000), now);
      if (changed) tell(grant.doc.id, grant.userId, state);
      return repo.present(grant.doc.id, now);
    },

    present: (grant: Grant) => repo.present(grant.doc.id, new Date()),

    async leave(grant: Grant): Promise<void> {
      if (await repo.leave(grant.doc.id, grant.userId, new Date())) tell(grant.doc.id, grant.userId, 'left');
    },

    /**
     * A reader's role changed: removed (null), they are gone at once; below editor, an `editing` presence
     * is `viewing` now. The document's readers are told, as for any change.
     */
    async roleChanged(documentId: string, userId: string, role: ShareRole | null): Promise<void> {
      const now = new Date();
      if (role === null) {
        if (await repo.leave(documentId, userId, now)) tell(documentId, userId, 'left');
      } else if (role !== 'editor' && (await repo.stopEditing(documentId, userId, now))) {
        tell(documentId, userId, 'viewing');
      }
    },

    /** Removes expired presence and tells each document's readers who left; returns how many. */
    async purge(now = new Date()): Promise<number> {
      const gone = await repo.purge(now);
      for (const p of gone) tell(p.documentId, p.userId, 'left');
      return gone.length;
    },
  };
}

export type Presence = ReturnType<typeof createPresence>;
