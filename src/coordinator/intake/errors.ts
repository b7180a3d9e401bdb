/**
 * The intake's error codes. Each is a DrillError a transport sends back to the partner with
 * its message (which says what was expected and what was received); transports map them to
 * their own status (the libp2p intake sends the code, an HTTP API maps it to a status code).
 */
import { DrillError } from '../../util/errors.ts';

export const IntakeErrorCode = {
  /** The peer is not a partner of this coordinator (and intake is not open). HTTP 403. */
  PARTNER_REFUSED: 'PARTNER_REFUSED',
  /** The partner already has its maximum of jobs (running or uploading). HTTP 429. */
  TOO_MANY_JOBS: 'TOO_MANY_JOBS',
  /** The coordinator runs its maximum of jobs from all partners. HTTP 503. */
  INTAKE_FULL: 'INTAKE_FULL',
  /** An upload (or its model) exceeds the bytes allowed per job. HTTP 413. */
  UPLOAD_TOO_LARGE: 'UPLOAD_TOO_LARGE',
  /** A malformed upload: file list, chunk offset or length, missing or unfinished files. HTTP 400. */
  UPLOAD_BAD: 'UPLOAD_BAD',
  /** No such upload of this partner (never begun, already submitted, or expired). HTTP 404. */
  UPLOAD_UNKNOWN: 'UPLOAD_UNKNOWN',
  /** Units smaller than the floor, or more units than the ceiling. HTTP 422. */
  UNITS_REFUSED: 'UNITS_REFUSED',
  /** No such job of this partner. HTTP 404. */
  JOB_UNKNOWN: 'JOB_UNKNOWN',
  /** The job has no (more) output files to fetch: not done, or freed. HTTP 404 / 410. */
  NO_OUTPUT: 'NO_OUTPUT',
} as const;
export type IntakeErrorCode = (typeof IntakeErrorCode)[keyof typeof IntakeErrorCode];

export class IntakeError extends DrillError {
  constructor(code: IntakeErrorCode, message: string, meta: Record<string, unknown> = {}) {
    super(code, message, meta);
    this.name = 'IntakeError';
  }
}
