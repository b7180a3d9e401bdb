/**
 * Who may submit jobs, and how much each partner may ask of the coordinator (pure: no I/O).
 *
 * The intake is the coordinator's widest door: anyone who can dial it can try. By default only
 * listed partners get in (`--allow-partner`, `--partners FILE`); `--open-intake` lets anyone in,
 * still under the same per-partner limits. Every limit bounds one resource a partner could
 * otherwise exhaust: disk (bytes per job × jobs), coordinator memory (units per job: the
 * scheduler keeps ~0.5 KB per unit; the model blob served to workers), and per-unit overhead
 * (a floor on unit size).
 */
import { DEFAULT_MAX_BLOB_BYTES } from '../../net/constants.ts';
import { IntakeError, IntakeErrorCode } from './errors.ts';

export interface PartnerPolicy {
  /** Anyone may submit (each peer id is its own partner, under the same limits). */
  open: boolean;
  /** Partner ids allowed to submit (libp2p peer ids; an HTTP API may add its own names). */
  partners: ReadonlySet<string>;
}

export interface IntakeLimits {
  /** Jobs one partner may have at once, running or still uploading. */
  maxJobsPerPartner: number;
  /** Jobs running or uploading from all partners together. */
  maxJobsTotal: number;
  /** Bytes one job may upload (model + inputs), written to disk as they arrive. */
  maxJobBytes: number;
  /** Largest model: the coordinator holds it in memory to serve workers while the job runs. */
  maxModelBytes: number;
  /** A unit must carry at least this many input bytes — unless the job has at most SMALL_JOB_UNITS units. */
  minUnitBytes: number;
  /** Most units in one job. */
  maxUnitsPerJob: number;
  /** A finished job's files (uploads and outputs) are deleted this long after it ended, if not released before. */
  outputTtlMs: number;
  /** An upload that receives nothing for this long is dropped (its bytes deleted, its job slot freed). */
  uploadIdleMs: number;
}

/**
 * Defaults, each with its reason:
 * - maxJobsPerPartner 4: a partner runs a job or two and uploads the next; 4 leaves room for a
 *   pipeline while one partner cannot fill the grid's queue.
 * - maxJobsTotal 64: with open intake every new peer id is a new partner; this caps what all of
 *   them hold together (64 × maxJobBytes of disk at most, 64 model blobs in memory at most).
 * - maxJobBytes 1 GiB: the old in-memory submit limit, now on disk; bigger jobs split well.
 * - maxModelBytes 256 MiB: the blob cap workers fetch models under (DEFAULT_MAX_BLOB_BYTES).
 * - minUnitBytes 4 KiB: a unit costs ~10 ms of fixed coordinator and worker time (two requests,
 *   a hash, a store row); a few KiB of input per unit keeps that from dominating. Jobs of at most
 *   64 units are exempt: they are cheap whatever their unit size.
 * - maxUnitsPerJob 10,000: ~5 MB of scheduler state; a 1 GiB job still gets units of 100 KiB.
 * - outputTtlMs 24 h: a partner has a day to fetch its outputs.
 * - uploadIdleMs 10 min: a client that stops sending for that long has gone away.
 */
export const defaultIntakeLimits: IntakeLimits = {
  maxJobsPerPartner: 4,
  maxJobsTotal: 64,
  maxJobBytes: 1024 * 1024 * 1024,
  maxModelBytes: DEFAULT_MAX_BLOB_BYTES,
  minUnitBytes: 4 * 1024,
  maxUnitsPerJob: 10_000,
  outputTtlMs: 24 * 60 * 60 * 1000,
  uploadIdleMs: 10 * 60 * 1000,
};

/** Jobs with at most this many units are exempt from the unit-size floor (see minUnitBytes). */
export const SMALL_JOB_UNITS = 64;

/** The closed policy with no partners (nobody gets in until partners are listed). */
export const closedPolicy: PartnerPolicy = { open: false, partners: new Set() };

/**
 * May `partner` submit?
 * @throws IntakeError PARTNER_REFUSED naming the partner id to add.
 */
export function authorizePartner(policy: PartnerPolicy, partner: string): void {
  if (policy.open || policy.partners.has(partner)) return;
  throw new IntakeError(IntakeErrorCode.PARTNER_REFUSED, `partner ${partner} is not allowed to submit jobs to this coordinator: its operator can add it with --allow-partner ${partner}`, { partner });
}

/** The smallest unit (rows) a job of `rows` rows of `rowBytes` input bytes each may use. */
export function minUnitRows(rows: number, rowBytes: number, limits: Pick<IntakeLimits, 'minUnitBytes' | 'maxUnitsPerJob'>): number {
  const floor = Math.min(Math.ceil(limits.minUnitBytes / Math.max(1, rowBytes)), Math.ceil(rows / SMALL_JOB_UNITS));
  return Math.min(rows, Math.max(1, floor, Math.ceil(rows / limits.maxUnitsPerJob)));
}

/**
 * The unit size a job runs with: the partner's `asked` rows per unit must respect the floor and
 * the ceiling; when the partner did not choose (`chosen` false), a default below them is raised.
 * @throws IntakeError UNITS_REFUSED naming the smallest acceptable unitRows.
 */
export function checkUnitRows(rows: number, rowBytes: number, unitRows: number, chosen: boolean, limits: Pick<IntakeLimits, 'minUnitBytes' | 'maxUnitsPerJob'>): number {
  const min = minUnitRows(rows, rowBytes, limits);
  if (unitRows >= min) return unitRows;
  if (!chosen) return min;
  const units = Math.ceil(rows / unitRows);
  const why = units > limits.maxUnitsPerJob
    ? `at most ${limits.maxUnitsPerJob} units per job`
    : `units of at least ${limits.minUnitBytes} input bytes (or at most ${SMALL_JOB_UNITS} units)`;
  throw new IntakeError(IntakeErrorCode.UNITS_REFUSED, `unitRows: expected at least ${min} rows per unit (${why}; a row is ${rowBytes} bytes, the job has ${rows} rows), received ${unitRows} (${units} units)`, { min, unitRows, units });
}
