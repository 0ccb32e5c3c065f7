import type { ReaderView } from './repository.ts';
import type { AttachmentRow, CommentRow, LinkRow, PresenceRow, VersionRow } from './schema.ts';
import type { ShareView } from './sharing.ts';

const iso = (d: Date) => d.toISOString();
const isoOrNull = (d: Date | null) => (d ? d.toISOString() : null);

/** A document as its reader sees it, without the body (lists). */
export const toSummary = ({ doc, role, favorite, lastViewedAt }: ReaderView) => ({
  id: doc.id,
  ownerId: doc.ownerId,
  projectId: doc.projectId,
  title: doc.title,
  tags: doc.tags,
  archived: doc.archived,
  isTemplate: doc.isTemplate,
  version: doc.version,
  role,
  favorite,
  lastViewedAt: isoOrNull(lastViewedAt),
  createdAt: iso(doc.createdAt),
  updatedAt: iso(doc.updatedAt),
});

export const toDocument = (view: ReaderView) => ({ ...toSummary(view), body: view.doc.body });

export const toVersion = (v: VersionRow) => ({ number: v.number, title: v.title, body: v.body, authorId: v.authorId, restoredFrom: v.restoredFrom, createdAt: iso(v.createdAt) });

export const toVersionSummary = (v: Omit<VersionRow, 'body' | 'documentId'> & { bytes: number }) => ({
  number: v.number,
  title: v.title,
  bytes: v.bytes,
  authorId: v.authorId,
  restoredFrom: v.restoredFrom,
  createdAt: iso(v.createdAt),
});

export const toAttachment = (a: AttachmentRow) => ({ id: a.id, fileId: a.fileId, name: a.name, mimeType: a.mimeType, size: a.size, addedBy: a.addedBy, createdAt: iso(a.createdAt) });

export const toShare = (s: ShareView) => ({ userId: s.userId, email: s.email, role: s.role, createdAt: iso(s.createdAt), updatedAt: iso(s.updatedAt) });

export const toLink = (l: LinkRow) => ({ id: l.id, role: l.role, last4: l.last4, expiresAt: isoOrNull(l.expiresAt), revokedAt: isoOrNull(l.revokedAt), createdAt: iso(l.createdAt) });

export const toComment = (c: CommentRow) => ({
  id: c.id,
  documentId: c.documentId,
  parentId: c.parentId,
  depth: c.depth,
  authorId: c.authorId,
  body: c.body,
  quote: c.quote,
  anchorStart: c.anchorStart,
  anchorEnd: c.anchorEnd,
  mentions: c.mentions,
  resolvedAt: isoOrNull(c.resolvedAt),
  resolvedBy: c.resolvedBy,
  createdAt: iso(c.createdAt),
  updatedAt: iso(c.updatedAt),
});

export const toPresence = (p: PresenceRow) => ({ userId: p.userId, state: p.state, since: iso(p.since), expiresAt: iso(p.expiresAt) });
