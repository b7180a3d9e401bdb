/**
 * The coordinator's HTTP side: the partner API, network and chain views, event stream,
 * metrics and dashboard (server.ts), who may call it (auth.ts), and the client that
 * `drill submit --api` and `drill status` use (client.ts). Imports coordinator, chain and net;
 * nothing below imports it.
 */
export { ApiServer, defaultApiServerOptions } from './server.ts';
export type { ApiServerDeps, ApiServerOptions } from './server.ts';
export { readTokensFile, parseTokens, parseHttpAddress, checkExposure, isLoopback, LOCAL_CALLER } from './auth.ts';
export type { Caller, TokenTable } from './auth.ts';
export { EventHub } from './events.ts';
export type { HubEvent, EventMap, EventType } from './events.ts';
export { ApiErrorCode, problem } from './problem.ts';
export type { Problem } from './problem.ts';
