/**
 * An incremental Server-Sent Events parser (the WHATWG event-stream rules
 * that matter to LLM upstreams): text arrives in arbitrary pieces, lines end
 * in LF, CR or CRLF (a CRLF may be split across pieces), lines starting with
 * ":" are comments, several `data:` lines of one event are joined with "\n",
 * and a blank line dispatches the event. Only data is reported: Chat
 * Completions streams carry nothing else that Parley reads.
 */
export function createSseParser(onData: (data: string) => void) {
  let buffer = '';
  let data: string[] = [];
  /** The previous piece ended in CR: a LF opening the next one belongs to it. */
  let pendingCr = false;

  const line = (text: string) => {
    if (text === '') {
      if (data.length) onData(data.length === 1 ? data[0]! : data.join('\n'));
      data = [];
      return;
    }
    if (text.charCodeAt(0) === 58 /* : */) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    if (field !== 'data') return;
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.charCodeAt(0) === 32 /* space */) value = value.slice(1);
    data.push(value);
  };

  return {
    push(piece: string) {
      let start = 0;
      if (pendingCr && piece.charCodeAt(0) === 10) start = 1;
      pendingCr = false;
      const text = buffer ? buffer + piece.slice(start) : piece.slice(start);
      let from = 0;
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c !== 10 && c !== 13) continue;
        line(text.slice(from, i));
        if (c === 13) {
          if (i + 1 === text.length) pendingCr = true;
          else if (text.charCodeAt(i + 1) === 10) i++;
        }
        from = i + 1;
      }
      buffer = from < text.length ? text.slice(from) : '';
    },
    /** The stream ended: an event not closed by a blank line is dropped, as the spec says. */
    end() {
      buffer = '';
      data = [];
      pendingCr = false;
    },
  };
}
