/**
 * A line diff (Myers' O(ND) algorithm) and its unified format, as `diff -u`
 * writes it. No diff library is among Parley's dependencies, and this is small.
 *
 * The common head and tail are taken off first (a typical edit touches a few
 * lines of a long document). Past `maxEdits` differing lines, or `maxSteps`
 * line comparisons, the search stops and the rest counts as removed and
 * added whole: the answer is still a correct diff, only not the shortest,
 * and a huge rewrite (or a pathological one) costs bounded time and memory.
 */
export type Edit = { op: ' ' | '-' | '+'; text: string };

export interface LineDiff {
  edits: Edit[];
  added: number;
  removed: number;
}

const splitLines = (text: string) => (text === '' ? [] : text.split('\n'));

export function diffLines(before: string, after: string, maxEdits = 2_000, maxSteps = 20_000_000): LineDiff {
  const a = splitLines(before);
  const b = splitLines(after);
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const middle = myers(a.slice(head, a.length - tail), b.slice(head, b.length - tail), maxEdits, maxSteps);
  const edits: Edit[] = [...a.slice(0, head).map((text) => ({ op: ' ' as const, text })), ...middle, ...a.slice(a.length - tail).map((text) => ({ op: ' ' as const, text }))];
  return { edits, added: edits.filter((e) => e.op === '+').length, removed: edits.filter((e) => e.op === '-').length };
}

function myers(a: string[], b: string[], maxEdits: number, maxSteps: number): Edit[] {
  const n = a.length;
  const m = b.length;
  if (n === 0) return b.map((text) => ({ op: '+', text }));
  if (m === 0) return a.map((text) => ({ op: '-', text }));
  const max = Math.min(n + m, maxEdits);
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  // Each round keeps only the diagonals it can have reached (-d..d, and one either side): memory grows as d², not d·(n+m).
  const trace: Int32Array[] = [];
  let steps = 0;
  search: for (let d = 0; d <= max; d++) {
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!) ? v[offset + k + 1]! : v[offset + k - 1]! + 1;
      let y = x - k;
      const from = x;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      steps += x - from + 1;
      if (steps > maxSteps) break search;
      v[offset + k] = x;
      if (x >= n && y >= m) return backtrack(trace, a, b, d);
    }
  }
  // Too many differences to search for the shortest script: all of one out, all of the other in.
  return [...a.map((text) => ({ op: '-' as const, text })), ...b.map((text) => ({ op: '+' as const, text }))];
}

function backtrack(trace: Int32Array[], a: string[], b: string[], last: number): Edit[] {
  const edits: Edit[] = [];
  let x = a.length;
  let y = b.length;
  for (let d = last; d >= 0; d--) {
    const saved = trace[d]!;
    const at = (k: number) => saved[k + d + 1]!;
    const k = x - y;
    const prevK = d === 0 ? 0 : k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      edits.push({ op: ' ', text: a[--x]! });
      y--;
    }
    if (d === 0) break;
    if (x === prevX) edits.push({ op: '+', text: b[--y]! });
    else edits.push({ op: '-', text: a[--x]! });
  }
  return edits.reverse();
}

/** The diff as `diff -u` prints it: `---`/`+++` headers, then hunks with `context` lines around each change. */
export function unifiedDiff(diff: LineDiff, labels: { from: string; to: string }, context = 3): string {
  const { edits } = diff;
  const changed = edits.map((e, i) => (e.op === ' ' ? -1 : i)).filter((i) => i >= 0);
  if (!changed.length) return '';
  const out = [`--- ${labels.from}`, `+++ ${labels.to}`];
  // Line numbers before each edit, in the old and the new text.
  const oldAt: number[] = [];
  const newAt: number[] = [];
  let o = 0;
  let nn = 0;
  for (const e of edits) {
    oldAt.push(o);
    newAt.push(nn);
    if (e.op !== '+') o++;
    if (e.op !== '-') nn++;
  }
  let i = 0;
  while (i < changed.length) {
    const start = Math.max(0, changed[i]! - context);
    let end = changed[i]!;
    // Changes closer than twice the context share a hunk.
    while (i + 1 < changed.length && changed[i + 1]! - end <= 2 * context) end = changed[++i]!;
    end = Math.min(edits.length - 1, end + context);
    i++;
    const slice = edits.slice(start, end + 1);
    const oldCount = slice.filter((e) => e.op !== '+').length;
    const newCount = slice.filter((e) => e.op !== '-').length;
    const range = (from: number, count: number) => `${count === 0 ? from : from + 1}${count === 1 ? '' : `,${count}`}`;
    out.push(`@@ -${range(oldAt[start]!, oldCount)} +${range(newAt[start]!, newCount)} @@`);
    for (const e of slice) out.push(`${e.op}${e.text}`);
  }
  return `${out.join('\n')}\n`;
}
