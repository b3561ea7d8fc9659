/** Suggestions for misspelt names: the known key closest to a typo (config keys, dataset description keys). */

/** Levenshtein distance (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The known key closest to a misspelt one ('batch_size' -> 'batchSize'), or undefined when none is close. */
export function closestKey(key: string, known: string[]): string | undefined {
  const norm = (s: string): string => s.toLowerCase().replace(/[-_\s]/g, '');
  const k = norm(key);
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of known) {
    const d = editDistance(k, norm(c));
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(1, Math.floor(k.length / 4)) ? best : undefined;
}
