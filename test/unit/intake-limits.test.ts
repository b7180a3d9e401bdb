/** The intake's pure rules: who may submit, the unit floor and ceiling, partner lists, size and duration flags. */
import { describe, it, expect } from 'vitest';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authorizePartner, checkUnitRows, minUnitRows, partnerPolicy, readPartnersFile, IntakeErrorCode, defaultIntakeLimits } from '../../src/coordinator/intake/index.ts';
import { parseSize, parseDuration } from '../../src/cli/args.ts';
import { errCode } from '../helpers/errors.ts';

const ID = '12D3KooWGzBSpsGjygxpk3rxJ3Um4qV5UbsSLHHpJQyMeGAYVaXH';
const limits = { minUnitBytes: 4096, maxUnitsPerJob: 10_000 };

describe('intake rules', () => {
  it('lets in listed partners, or anyone when open', () => {
    expect(errCode(() => authorizePartner({ open: false, partners: new Set([ID]) }, ID))).toBeUndefined();
    expect(errCode(() => authorizePartner({ open: false, partners: new Set() }, ID))).toBe(IntakeErrorCode.PARTNER_REFUSED);
    expect(errCode(() => authorizePartner({ open: true, partners: new Set() }, ID))).toBeUndefined();
  });

  it('floor: units of ≥ minUnitBytes of input unless the job has ≤ 64 units; ceiling: ≤ maxUnitsPerJob units', () => {
    expect(minUnitRows(2_000_000, 4, limits)).toBe(1024); // 4 KiB of 4-byte rows
    expect(minUnitRows(640, 4, limits)).toBe(10); // 64 units of 10 rows are fine whatever their size
    expect(minUnitRows(10, 1_000_000, limits)).toBe(1);
    expect(minUnitRows(1e9, 1e6, limits)).toBe(1e5); // the ceiling: 10,000 units of 100,000 rows
    expect(checkUnitRows(2_000_000, 4, 1024, true, limits)).toBe(1024);
    expect(errCode(() => checkUnitRows(2_000_000, 4, 1023, true, limits))).toBe(IntakeErrorCode.UNITS_REFUSED);
    expect(checkUnitRows(2_000_000, 4, 1, false, limits)).toBe(1024); // a default below the floor is raised
    expect(defaultIntakeLimits.maxJobBytes).toBe(1024 ** 3);
  });

  it('reads a partners file: one peer id per line, labels and # comments; names a bad line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'drill-partners-'));
    try {
      await writeFile(join(dir, 'ok'), `# partners\n${ID} acme\n\n  ${ID}  # again\n`);
      expect(readPartnersFile(join(dir, 'ok'))).toEqual([ID, ID]);
      expect(partnerPolicy({ files: [join(dir, 'ok')], allow: [] }).partners).toEqual(new Set([ID]));
      await writeFile(join(dir, 'bad'), `${ID}\nnot-an-id\n`);
      expect(() => readPartnersFile(join(dir, 'bad'))).toThrow(/--partners .*bad:2: expected a partner's peer id/);
      expect(() => readPartnersFile(join(dir, 'missing'))).toThrow(/--partners: expected a readable file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('parses sizes and durations, naming the flag otherwise', () => {
    expect(parseSize('4K', '--x')).toBe(4096);
    expect(parseSize('1G', '--x')).toBe(1024 ** 3);
    expect(parseSize('1.5MiB', '--x')).toBe(1.5 * 1024 ** 2);
    expect(parseSize('512', '--x')).toBe(512);
    expect(() => parseSize('lots', '--cache-max')).toThrow(/--cache-max: expected a size like 512M/);
    expect(parseDuration('24h', '--x')).toBe(86_400_000);
    expect(parseDuration('90s', '--x')).toBe(90_000);
    expect(() => parseDuration('24', '--output-ttl')).toThrow(/--output-ttl: expected a duration/);
  });
});
