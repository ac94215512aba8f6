/**
 * The recent events of the dashboard, numbered, so that a client that lost
 * its stream can get exactly what it missed (`Last-Event-ID`). Bounded by
 * count and by bytes: a client away for longer is told to reload instead.
 *
 * Ids are `<epoch>.<seq>`: the epoch changes with every server start, so an
 * id from an earlier process is never mistaken for one of this.
 */
export type LoggedEvent = {
  readonly seq: number;
  readonly topic: string;
  /** The event in the SSE wire format. */
  readonly text: string;
};

export type EventLogOptions = {
  /** @default 2000 */
  readonly maxEvents?: number | undefined;
  /** @default 8 MiB */
  readonly maxBytes?: number | undefined;
};

export class EventLog {
  readonly epoch = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  readonly #events: LoggedEvent[] = [];
  readonly #maxEvents: number;
  readonly #maxBytes: number;
  #bytes = 0;
  #seq = 0;

  constructor(options: EventLogOptions = {}) {
    this.#maxEvents = options.maxEvents ?? 2000;
    this.#maxBytes = options.maxBytes ?? 8 * 1024 * 1024;
  }

  /** The id of the latest event (of none yet: `<epoch>.0`). */
  get lastId(): string {
    return this.idOf(this.#seq);
  }

  idOf(seq: number): string {
    return `${this.epoch}.${seq}`;
  }

  /** Takes the next id; `format` builds the wire text with it. */
  append(topic: string, format: (id: string) => string): LoggedEvent {
    const seq = ++this.#seq;
    const event = { seq, topic, text: format(this.idOf(seq)) };
    this.#events.push(event);
    this.#bytes += event.text.length;
    while (
      this.#events.length > this.#maxEvents ||
      (this.#bytes > this.#maxBytes && this.#events.length > 1)
    ) {
      this.#bytes -= this.#events.shift()?.text.length ?? 0;
    }
    return event;
  }

  /**
   * Forgets every event and skips an id: no client can resume across this
   * point (events were not recorded after it, while nobody watched).
   */
  gap(): void {
    this.#seq++;
    this.#events.length = 0;
    this.#bytes = 0;
  }

  /**
   * The events after `lastId` on `topics`, or undefined when they cannot all
   * be given (an id of another server start, from the future, or too old).
   */
  since(lastId: string, topics: ReadonlySet<string>): LoggedEvent[] | undefined {
    const match = /^([a-z0-9]+)\.(\d+)$/.exec(lastId);
    if (match?.[1] !== this.epoch) return undefined;
    const seq = Number(match[2]);
    if (seq > this.#seq) return undefined;
    const oldest = this.#events[0]?.seq ?? this.#seq + 1;
    if (seq < oldest - 1) return undefined;
    return this.#events.filter((event) => event.seq > seq && topics.has(event.topic));
  }
}
