/**
 * HTTP Range requests on one file (RFC 9110 §14): a single `bytes=` range, or none. Several
 * ranges are answered with the whole file (a server may ignore Range); a range that starts past
 * the end is unsatisfiable (416). Pure.
 */

export type RangeAnswer =
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

/** Interpret a Range header against a file of `size` bytes (`end` inclusive). */
export function parseRange(header: string | undefined, size: number): RangeAnswer {
  if (header === undefined) return { kind: 'full' };
  const m = header.trim().match(/^bytes=(\d*)-(\d*)$/);
  // Not a single byte range (another unit, several ranges, garbage): serve the whole file.
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  if (m[1] === '') {
    // Suffix range: the last N bytes.
    const n = Number(m[2]);
    if (n === 0) return { kind: 'unsatisfiable' };
    return size === 0 ? { kind: 'unsatisfiable' } : { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (!Number.isSafeInteger(start) || start >= size) return { kind: 'unsatisfiable' };
  if (end < start) return { kind: 'full' }; // invalid range: ignore it
  return { kind: 'partial', start, end };
}
