// The server entry, `imgjob/serve`: the Retail Pulse job API on SQLite.
export { startServer, type RunningServer, type ServeConfig } from './server.js';
export type { AddressGuard } from './address-guard.js';
