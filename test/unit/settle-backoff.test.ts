/** Reconnect backoff schedule. */
import { describe, expect, it } from 'vitest';
import { backoffDelay, backoffSchedule, defaultBackoffOptions } from '../../src/settle/index.ts';

describe('settle backoff', () => {
  it('doubles from 500 ms up to the 30 s cap', () => {
    expect(backoffSchedule(9)).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });
  it('equal jitter keeps each delay within [base/2, base]', () => {
    expect(backoffDelay(3, defaultBackoffOptions, () => 0)).toBe(2000);
    expect(backoffDelay(3, defaultBackoffOptions, () => 1)).toBe(4000);
    expect(backoffDelay(3, defaultBackoffOptions, () => 0.5)).toBe(3000);
  });
  it('stays at the cap for huge attempt numbers and rejects bad input', () => {
    expect(backoffDelay(10_000, { ...defaultBackoffOptions, jitter: 0 })).toBe(30_000);
    expect(() => backoffDelay(-1)).toThrow(RangeError);
    expect(() => backoffDelay(1.5)).toThrow(RangeError);
  });
});
