/**
 * The coordinator's intake of remote jobs: a transport-neutral core (partner policy and
 * limits, uploads streamed to disk with byte accounting, job tracking and cleanup) and the
 * libp2p transport on it (server and the `drill submit` client). See core.ts for the API.
 */
export { IntakeCore, MAX_LIST } from './core.ts';
export type { IntakeCoordinator, IntakeCoreOptions, IntakeSubmitOptions, IntakeJobStatus, UploadInfo } from './core.ts';
export { IntakeError, IntakeErrorCode } from './errors.ts';
export { defaultIntakeLimits, closedPolicy, authorizePartner, checkUnitRows, minUnitRows, SMALL_JOB_UNITS } from './limits.ts';
export type { IntakeLimits, PartnerPolicy } from './limits.ts';
export { Upload, MAX_UPLOAD_INPUTS } from './upload.ts';
export type { UploadFileDecl, UploadFileState } from './upload.ts';
export { partnerPolicy, readPartnersFile, checkPartnerId } from './partners.ts';
export { IntakeServer } from './libp2p.ts';
export { IntakeClient, refusal } from './client.ts';
export type { ClientFile } from './client.ts';
export { INTAKE_PROTOCOL, CHUNK_BYTES, POLL_MS } from './wire.ts';
