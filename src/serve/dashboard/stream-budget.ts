/**
 * How many event streams may be open: per client address and in total. A
 * stream holds its connection for as long as the page is open, so without a
 * budget one client opening a thousand of them takes every connection the
 * server has, and nobody else is answered. Past the budget a stream is
 * refused with 429; the API's requests never count against it.
 */

export type StreamLimits = {
  /** Most streams one client address may hold. @default 16 */
  readonly perClient: number;
  /** Most streams over all clients. @default 256 */
  readonly total: number;
};

/** Why a stream is refused, in words for its 429. */
export type StreamRefusal = { readonly reason: string };

export class StreamBudget {
  readonly #limits: StreamLimits;
  readonly #byClient = new Map<string, number>();
  #total = 0;

  constructor(limits: StreamLimits) {
    this.#limits = limits;
  }

  /** Takes a place for a stream of `client`, or says why there is none. */
  take(client: string): StreamRefusal | undefined {
    const held = this.#byClient.get(client) ?? 0;
    if (held >= this.#limits.perClient)
      return {
        reason: `this address holds ${held} event streams already, the most one client may (--max-streams-per-client); close some pages, or retry later`,
      };
    if (this.#total >= this.#limits.total)
      return {
        reason: `the server holds ${this.#total} event streams, the most it serves (--max-streams); retry later`,
      };
    this.#byClient.set(client, held + 1);
    this.#total++;
    return undefined;
  }

  /** Gives back the place of a stream of `client` that ended. */
  release(client: string): void {
    const held = this.#byClient.get(client) ?? 0;
    if (held <= 1) this.#byClient.delete(client);
    else this.#byClient.set(client, held - 1);
    this.#total = Math.max(0, this.#total - 1);
  }
}

/** `::ffff:127.0.0.1` and `127.0.0.1` are one client. */
export function clientAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
