/**
 * Tuning constants of the network layer. Each says why it has its value; options in
 * `node.ts` / `blobs.ts` default to these.
 */

/** Default listen address: loopback with an OS-chosen port, so nothing is exposed by accident
 * and many nodes (tests, the simulator, the demo) can run side by side. */
export const DEFAULT_LISTEN = ['/ip4/127.0.0.1/tcp/0'] as const;

/**
 * Largest gossipsub RPC frame accepted from a peer (gossipsub `maxInboundDataLength`). One RPC
 * may batch a few messages plus control data; our largest topic payload is a block carrying
 * credit records (well under 1 MiB), so 4 MiB leaves room for batching while a peer cannot make
 * us buffer an unbounded frame. Frames over it close that peer's inbound gossip stream.
 */
export const GOSSIP_MAX_RPC_BYTES = 4 * 1024 * 1024;

/** Upper bound any TopicSpec.maxBytes may declare at the default frame limit: a message must
 * fit in one RPC frame with room for its signature, key and control data (1 KiB is ample). */
export const GOSSIP_MAX_MESSAGE_BYTES = GOSSIP_MAX_RPC_BYTES - 1024;

/** Default request cap for `handle()`: requests are small (ids, hashes, commitments);
 * 1 MiB lets a reveal of a unit's outputs through and stops memory abuse by one stream. */
export const DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024;

/** Default response cap for `request()`: 16 MiB covers revealed outputs of large units. Blob
 * fetches pass their own, larger cap. */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Default request timeout: a loopback/LAN round trip takes milliseconds; 15 s tolerates a
 * loaded worker (ORT sessions hogging the CPU) without hanging a coordinator forever. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

/** How long a responder waits for the whole request to arrive: requests are small, so 10 s is
 * generous and bounds how long a slow-loris peer can pin a stream. */
export const REQUEST_READ_TIMEOUT_MS = 10_000;

/** Default wait in `waitForTopicPeers`: a gossipsub subscription is announced right after the
 * connection's identify completes (tens of ms on loopback); 10 s allows a slow start. */
export const DEFAULT_TOPIC_PEERS_TIMEOUT_MS = 10_000;

/** Chunk size for streaming frames: 64 KiB matches yamux's default window scale, so one chunk
 * rarely overflows the muxer's send window and backpressure (`drain`) works per chunk. */
export const STREAM_CHUNK_BYTES = 64 * 1024;

/** Concurrent inbound request streams per connection per protocol: a worker serves a few
 * coordinators; 32 is libp2p's default and bounds per-peer fan-in. */
export const MAX_INBOUND_STREAMS = 32;

/** Default blob cap: ONNX models in our workloads are a few MB; 256 MiB allows real models
 * (ResNet-50 is ~100 MB) without letting a server exhaust memory. */
export const DEFAULT_MAX_BLOB_BYTES = 256 * 1024 * 1024;

/** Blob fetch timeout: 256 MiB at a modest 10 MB/s is ~27 s; 120 s covers slow links. */
export const DEFAULT_BLOB_TIMEOUT_MS = 120_000;

/** Protocol id of content-addressed blob transfer. */
export const BLOB_PROTOCOL = '/matrix-drill/blob/1.0.0';

/**
 * IPs exempt from gossipsub's IP-colocation penalty. Its defaults (threshold 10 peers per IP,
 * weight -5 per surplus peer squared) graylist everyone once ~15 nodes share an address, which
 * is exactly a local grid, a devnet or a test on 127.0.0.1. Loopback peers are on our own host,
 * so colocation says nothing about Sybils there.
 */
export const COLOCATION_WHITELIST = ['127.0.0.1', '::1'] as const;

/**
 * Networks exempt from libp2p's inbound connection limits (5 new connections per second per
 * host, 10 pending). Those defaults refuse the 6th worker that a local grid or devnet starts
 * on one machine within a second; loopback connections come from our own host, so the
 * flood protection buys nothing there.
 */
export const CONNECTION_ALLOW = ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128'] as const;

/** Redial attempts for a dropped bootstrap peer. With a 1 s first wait growing ×1.5 per try,
 * 10 attempts span about 2 minutes (the last wait ~38 s): long enough to ride out a
 * coordinator restart, short enough that a peer gone for good stops costing dials. */
export const RECONNECT_RETRIES = 10;
export const RECONNECT_INTERVAL_MS = 1000;
export const RECONNECT_BACKOFF = 1.5;

/**
 * How long a peer disconnected for its gossip score (below the graylist threshold) is refused
 * connections both ways. Gossipsub keeps a departed peer's score without decay for an hour, so
 * a returning offender would be graylisted again at once anyway; 10 min of ban spares us its
 * reconnect churn and its request/response traffic meanwhile, and is short enough that an
 * honest node hit by a bug (version skew) comes back by itself.
 */
export const GRAYLIST_BAN_MS = 10 * 60_000;
