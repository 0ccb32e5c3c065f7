import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { diffLines, unifiedDiff } from '../../../src/modules/documents/diff.ts';

/** The two texts an edit script stands between. */
function sides(edits: { op: string; text: string }[]) {
  return { before: edits.filter((e) => e.op !== '+').map((e) => e.text), after: edits.filter((e) => e.op !== '-').map((e) => e.text) };
}

/** The longest common subsequence's length, by the textbook table: what a shortest diff keeps. */
function lcs(a: string[], b: string[]): number {
  const row = new Array(b.length + 1).fill(0);
  for (const x of a) {
    let diag = 0;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = x === b[j - 1] ? diag + 1 : Math.max(row[j], row[j - 1]);
      diag = up;
    }
  }
  return row[b.length];
}

let seed = 42;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const lines = () => Array.from({ length: Math.floor(random() * 14) }, () => 'abcd'[Math.floor(random() * 4)]!);

describe('line diff', () => {
  test('an edit script between any two texts is correct and as short as can be', () => {
    for (let i = 0; i < 2000; i++) {
      const a = lines();
      const b = lines();
      const d = diffLines(a.join('\n'), b.join('\n'));
      assert.deepEqual(sides(d.edits), { before: a, after: b });
      assert.equal(d.added + d.removed, a.length + b.length - 2 * lcs(a, b), `${a} → ${b}`);
    }
  });

  test('past the edit or the step budget it is still correct, just not minimal', () => {
    const a = Array.from({ length: 300 }, (_, i) => `a${i}`);
    const b = Array.from({ length: 300 }, (_, i) => `b${i}`);
    const d = diffLines(a.join('\n'), b.join('\n'), 10);
    assert.deepEqual(sides(d.edits), { before: a, after: b });
    // Repetitive text makes long snakes on every diagonal: the step budget bounds them.
    const x = Array.from({ length: 2000 }, (_, i) => (i % 3 ? 'same' : `x${i}`));
    const y = Array.from({ length: 2000 }, (_, i) => (i % 5 ? 'same' : `y${i}`));
    for (const steps of [100, 10_000]) assert.deepEqual(sides(diffLines(x.join('\n'), y.join('\n'), 2_000, steps).edits), { before: x, after: y });
    // A whole 1 MB rewrite answers (all out, all in) rather than searching for long.
    const big = Array.from({ length: 100_000 }, (_, i) => `old ${i}`);
    const rewritten = Array.from({ length: 100_000 }, (_, i) => `new ${i}`);
    const whole = diffLines(big.join('\n'), rewritten.join('\n'));
    assert.deepEqual([whole.added, whole.removed], [100_000, 100_000]);
  });

  test('unified format: headers, hunks with three lines of context, merged when close', () => {
    const before = 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk';
    const after = 'a\nb\nX\nd\ne\nf\ng\nh\ni\nj\nk\nl';
    assert.equal(
      unifiedDiff(diffLines(before, after), { from: 'v1', to: 'v2' }),
      ['--- v1', '+++ v2', '@@ -1,6 +1,6 @@', ' a', ' b', '-c', '+X', ' d', ' e', ' f', '@@ -9,3 +9,4 @@', ' i', ' j', ' k', '+l', ''].join('\n'),
    );
    assert.equal(unifiedDiff(diffLines('', 'x'), { from: 'v1', to: 'v2' }), '--- v1\n+++ v2\n@@ -0,0 +1 @@\n+x\n');
    assert.equal(unifiedDiff(diffLines('same\n', 'same\n'), { from: 'v1', to: 'v2' }), '', 'no change, no diff');
  });

  test('a long document with one changed line diffs at once', () => {
    const doc = Array.from({ length: 50_000 }, (_, i) => `line ${i}`);
    const edited = [...doc];
    edited[25_000] = 'changed';
    const d = diffLines(doc.join('\n'), edited.join('\n'));
    assert.equal(d.added, 1);
    assert.equal(d.removed, 1);
  });
});
