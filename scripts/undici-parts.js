// @ts-check
/**
 * What the bundled command line takes from undici, in place of its index:
 * `undici`'s index.js loads all of it (fetch, WebSocket, caches, mocks…),
 * ~1.1 MB that each `imgjob run` would compile and run for the three
 * classes the downloads use. scripts/bundle.js points `'undici'` here.
 *
 * A name imported from 'undici' that is not exported here fails the build
 * (esbuild: no matching export), so nothing goes missing in silence.
 */
import connect from 'undici/lib/api/api-connect.js';
import buildConnector from 'undici/lib/core/connect.js';
import Agent from 'undici/lib/dispatcher/agent.js';
import Dispatcher from 'undici/lib/dispatcher/dispatcher.js';
import EnvHttpProxyAgent from 'undici/lib/dispatcher/env-http-proxy-agent.js';

// The index gives every dispatcher undici's request methods; of those, the
// proxy agent uses `connect()`, for its tunnels (test/download-proxy.test.ts).
Object.assign(Dispatcher.prototype, { connect });

export { Agent, EnvHttpProxyAgent, buildConnector };
