import { AppError, ValidationError } from '../../errors.ts';
import { DEFAULT_CONTEXT_WINDOW, encodingOf } from '../ai/index.ts';
import type { ChatMessage, ChatPart, ModelInfo, TokenCounter } from '../ai/index.ts';
import type { Files } from '../files/index.ts';
import type { MessageRow } from './messages.ts';
import { asSent, STORED_ENCODING } from './message-tokens.ts';
import type { ContentInput, FilePart, UserPart } from './schema.ts';

/** Largest image sent to a model: Anthropic's limit per image (OpenAI takes 20 MB); bigger ones are refused when attached. */
export const IMAGE_MAX_BYTES = 5 * 1024 * 1024;
/** Images every provider takes inline (OpenAI, Anthropic, Mistral); other images are named to the model, not shown. */
const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
/** Share of the model's window (less the reply) that the files of one message may fill. */
const FILE_SHARE = 0.5;
/** Most of one file's text the safety checks read: about what a model with a 128k-token window is shown of it. */
const CHECKED_FILE_CHARS = 256_000;

const readable = (mimeType: string) => mimeType.startsWith('text/') || mimeType === 'application/json' || mimeType === 'application/pdf';

/** A message as the turn is built from it (stored, or about to be; `tokens` as stored, see message-tokens.ts). */
export type Turn = Pick<MessageRow, 'role' | 'text' | 'content'> & { status?: MessageRow['status']; tokens?: number | null };

export interface AttachmentsDeps {
  files: Pick<Files, 'get' | 'textOf' | 'bytesOf'>;
  /** A file's text is up to 2 million characters: cut on a counting thread. */
  tokens: Pick<TokenCounter, 'truncate'>;
}

/**
 * Files in chat: the file parts a message is sent with, checked and described
 * once when it is posted; and, each turn, what the model is given for them:
 * images inline (for a model that can see), the text of text files and PDFs
 * in a delimited block cut to the room the model has, a note for the rest
 * (deleted, unreadable, a type without text).
 */
export function createAttachments(d: AttachmentsDeps) {
  /** What is stored for one file id: 404 `file_not_found` unless it is the user's; 413 for an image too large to send. */
  async function describe(userId: string, fileId: string): Promise<FilePart> {
    const file = await d.files.get(userId, fileId);
    if (IMAGE_TYPES.has(file.mimeType) && file.size > IMAGE_MAX_BYTES) {
      throw new AppError(413, 'image_too_large', 'Payload too large', `${file.name} is ${file.size} bytes; images sent to a model may be at most ${IMAGE_MAX_BYTES} bytes`, {
        extra: { fileId, maxBytes: IMAGE_MAX_BYTES },
      });
    }
    return { type: 'file', fileId: file.id, name: file.name, mimeType: file.mimeType, size: file.size };
  }

  async function fileParts(userId: string, part: FilePart, model: ModelInfo, maxTokens: number): Promise<ChatPart[]> {
    const note = (text: string): ChatPart[] => [{ type: 'text', text }];
    const gone = note(`[file ${part.name} was deleted; its contents are no longer available]`);
    if (part.deleted) return gone;
    let file: Awaited<ReturnType<Files['get']>>;
    try {
      file = await d.files.get(userId, part.fileId);
    } catch (err) {
      // Deleted, and the event marking its messages not handled yet.
      if (err instanceof AppError && err.status === 404) return gone;
      throw err;
    }
    try {
      if (IMAGE_TYPES.has(file.mimeType)) {
        if (!model.vision) return note(`[image ${file.name} not shown: ${model.id} cannot see images]`);
        if (file.size > IMAGE_MAX_BYTES) return note(`[image ${file.name} not shown: images over ${IMAGE_MAX_BYTES} bytes are not sent]`);
        const bytes = await d.files.bytesOf(file, IMAGE_MAX_BYTES);
        return [
          { type: 'text', text: `[image ${file.name}]` },
          { type: 'image', url: `data:${file.mimeType};base64,${bytes.toString('base64')}` },
        ];
      }
      const text = await d.files.textOf(file);
      if (text === null) return note(`[file ${file.name} (${file.mimeType}) is attached; its contents cannot be shown to the model]`);
      const cut = await d.tokens.truncate(model.model, text, maxTokens);
      const truncated = cut.tokens < cut.total ? `\n[truncated: first ${cut.tokens} of ${cut.total} tokens of ${file.name}]` : '';
      return note(`<file name="${file.name.replaceAll('"', "'")}" type="${file.mimeType}">\n${cut.text}\n</file>${truncated}`);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      return note(`[file ${file.name} could not be read: ${err.message}]`);
    }
  }

  /** A message for the model: its text and files in order; images as parts, everything else as text. */
  async function render(userId: string, m: Turn, model: ModelInfo, fileBudget: number): Promise<ChatMessage | undefined> {
    const files = m.content.filter((p): p is FilePart => p.type === 'file');
    if (m.role !== 'user' || m.status === 'flagged' || !files.length) return asSent(m);
    // The message's text files share its room evenly.
    const perFile = Math.floor(fileBudget / Math.max(1, files.filter((f) => !f.deleted && readable(f.mimeType)).length));
    const parts: ChatPart[] = [];
    for (const p of m.content) {
      if (p.type !== 'text' && p.type !== 'file') continue;
      for (const piece of p.type === 'text' ? [p] : await fileParts(userId, p, model, perFile)) {
        const last = parts.at(-1);
        // Adjacent text becomes one part: one block of text per run, as a user would have typed it.
        if (piece.type === 'text' && last?.type === 'text') parts[parts.length - 1] = { type: 'text', text: `${last.text}\n\n${piece.text}` };
        else if (piece.type === 'image' || piece.text) parts.push(piece);
      }
    }
    const content = parts.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('\n\n');
    return parts.some((p) => p.type === 'image') ? { role: m.role, content, parts } : { role: m.role, content };
  }

  return {
    /**
     * The content to store for what the client sent: file ids become file parts
     * (name, type, size). Throws before anything is written.
     */
    async resolve(userId: string, content: string | ContentInput[]): Promise<string | UserPart[]> {
      if (typeof content === 'string') return content;
      const parts: UserPart[] = [];
      for (const p of content) parts.push(p.type === 'text' ? p : await describe(userId, p.fileId));
      return parts;
    },

    /**
     * What the safety checks read of a message's files (resolved): each file's name, with the text of
     * those that have one, cut to CHECKED_FILE_CHARS. A file that cannot be read gives its name only.
     */
    async textsOf(userId: string, content: string | UserPart[]): Promise<string[]> {
      if (typeof content === 'string') return [];
      const texts: string[] = [];
      for (const p of content) {
        if (p.type !== 'file') continue;
        let text: string | null = null;
        try {
          if (readable(p.mimeType)) text = await d.files.textOf(await d.files.get(userId, p.fileId));
        } catch (err) {
          if (!(err instanceof AppError)) throw err;
        }
        texts.push(text === null ? p.name : `${p.name}\n${text.slice(0, CHECKED_FILE_CHARS)}`);
      }
      return texts;
    },

    /**
     * The branch as `model` sees it, oldest first. The last message's images
     * need a model that can see (400 `model_cannot_see_images` otherwise);
     * earlier images become a note for one that cannot. The files of one
     * message fill at most half the window left after the reply.
     */
    async toChatMessages(userId: string, branch: Turn[], model: ModelInfo, replyBudget: number): Promise<{ history: ChatMessage[]; counted: Map<ChatMessage, number> }> {
      const latest = branch.at(-1);
      if (!model.vision && latest?.content.some((p) => p.type === 'file' && !p.deleted && IMAGE_TYPES.has(p.mimeType))) {
        throw ValidationError(`Model "${model.id}" cannot take images: choose a model that can (GET /v1/ai/models, \`vision\`), or send no images`, 'model_cannot_see_images', {
          model: model.id,
        });
      }
      const fileBudget = Math.max(0, Math.floor(((model.contextWindow ?? DEFAULT_CONTEXT_WINDOW) - replyBudget) * FILE_SHARE));
      const history: ChatMessage[] = [];
      // Stored counts stand for messages sent as stored (no files) to a model counted in their encoding: nothing is tokenized again.
      const counted = new Map<ChatMessage, number>();
      const sameEncoding = encodingOf(model.model) === STORED_ENCODING;
      for (const m of branch) {
        const message = await render(userId, m, model, fileBudget);
        if (!message) continue;
        history.push(message);
        if (sameEncoding && typeof m.tokens === 'number' && !m.content.some((p) => p.type === 'file')) counted.set(message, m.tokens);
      }
      return { history, counted };
    },
  };
}

export type Attachments = ReturnType<typeof createAttachments>;
