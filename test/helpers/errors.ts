/** The DrillError code a call throws (undefined when it returns), for table-driven error tests. */
import { isDrillError } from '../../src/util/errors.ts';

export function errCode(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isDrillError(e) ? e.code : `NOT_A_DRILL_ERROR ${String(e)}`;
  }
  return undefined;
}

/** The DrillError code an async call rejects with (undefined when it resolves). */
export async function errCodeAsync(f: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await f();
  } catch (e) {
    return isDrillError(e) ? e.code : `NOT_A_DRILL_ERROR ${String(e)}`;
  }
  return undefined;
}
