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
import api from 'undici/lib/api/index.js';
import buildConnector from 'undici/lib/core/connect.js';
import Agent from 'undici/lib/dispatcher/agent.js';
import Dispatcher from 'undici/lib/dispatcher/dispatcher.js';
import EnvHttpProxyAgent from 'undici/lib/dispatcher/env-http-proxy-agent.js';

// As the index does: the proxy agent opens its tunnels with `connect()`, one
// of these methods.
Object.assign(Dispatcher.prototype, api);

export { Agent, EnvHttpProxyAgent, buildConnector };
