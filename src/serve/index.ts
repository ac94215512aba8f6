// The server entry, `imgjob/serve`: the Retail Pulse job API on SQLite.
export { startServer, type RunningServer, type ServeConfig } from './server.js';
export type { AddressGuard } from '../download/address-guard.js';
export type { Health, JobLimits } from './job-service.js';
export type { JobView, StoreSummary } from './job-view.js';
export type { HttpLimits } from './http.js';
export type { LogFormat } from '../log/event-log.js';
