/** A Server-Sent Event as a raw-fetch client reads it. */
export interface SseEvent {
  id?: string;
  event: string;
  data: any;
}

/** Parses an event-stream body into events as they arrive (comments and retry lines skipped). */
export async function* readSse(res: Response): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields: Record<string, string> = {};
      for (const line of block.split('\n')) {
        if (!line || line.startsWith(':')) continue;
        const i = line.indexOf(':');
        const name = i < 0 ? line : line.slice(0, i);
        const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        fields[name] = fields[name] === undefined ? value : `${fields[name]}\n${value}`;
      }
      if (fields.data === undefined) continue;
      yield { id: fields.id, event: fields.event ?? 'message', data: JSON.parse(fields.data) };
    }
  }
}

/** Every event of a stream, to its end. */
export async function allSse(res: Response): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  for await (const e of readSse(res)) events.push(e);
  return events;
}

/** The text an event stream carried in its deltas. */
export const deltaText = (events: SseEvent[]) =>
  events
    .filter((e) => e.event === 'delta')
    .map((e) => e.data.text)
    .join('');
