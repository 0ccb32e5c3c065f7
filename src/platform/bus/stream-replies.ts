/** The shapes of Redis Streams replies, as ioredis returns them over RESP2 and over RESP3 with its default "legacy" mapping. */

export type Entry = [id: string, fields: string[] | null];
/** XREADGROUP's reply: RESP2 gives [[stream, entries], …]; RESP3 (ioredis' default) a map, flattened to [stream, entries, …]. */
export type ReadReply = Array<[string, Entry[]]> | Array<string | Entry[]> | null;

/** A flat [field, value, …] list (an entry's fields, an XINFO row) as an object. */
export const fieldsOf = (flat: string[]): Record<string, string> => {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
};

export function streamsOf(reply: ReadReply): Array<[string, Entry[]]> {
  if (!reply?.length) return [];
  if (Array.isArray(reply[0])) return reply as Array<[string, Entry[]]>;
  const out: Array<[string, Entry[]]> = [];
  for (let i = 0; i + 1 < reply.length; i += 2) out.push([reply[i] as string, reply[i + 1] as Entry[]]);
  return out;
}
