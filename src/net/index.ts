/**
 * Public surface of the network layer: a libp2p node with typed gossip topics and
 * request/response, content-addressed blob transfer, and the gossip verdict mapping.
 */
export { createDrillNode, defaultDrillNodeOptions } from './node.ts';
export type { DrillNode, DrillNodeOptions, RequestOptions, HandleOptions, NetMetrics, TopicCounters, DrillServices, VerdictEvent, PrivateKey } from './node.ts';
export { jsonCodec, verdictFor, registerVerdicts, checkTopicSpec, Verdicts } from './topics.ts';
export type { TopicSpec, Verdict, VerdictTable, JsonCodecOptions } from './topics.ts';
export { BlobServer, fetchBlob, sha256HexOf, defaultBlobServerOptions } from './blobs.ts';
export type { BlobServerOptions, FetchBlobOptions } from './blobs.ts';
export { NetError, NetErrorCode } from './errors.ts';
export * from './constants.ts';
