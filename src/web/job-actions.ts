/**
 * The job page's buttons: cancel a running job, take a failed one's failed
 * stores up again. One request at a time: both buttons are disabled while
 * one runs, and the outcome (or the server's refusal) is said in words.
 */
import * as api from './api.js';
import { el, replaceChildren } from './dom.js';
import type { JobStatus } from './model.js';

export class JobActions {
  readonly element = el('section', { class: 'actions', 'aria-label': 'Actions' });
  readonly #cancel = el('button', { type: 'button', class: 'button danger' }, 'Cancel job');
  readonly #retry = el('button', { type: 'button', class: 'button' }, 'Retry failed stores');
  readonly #message = el('p', { class: 'action-message', role: 'status', 'aria-live': 'polite' });
  readonly #jobId: string;
  #status: JobStatus = 'ongoing';
  #busy = false;

  /** `done` runs after an action succeeded: the page reads the job again. */
  constructor(jobId: string, done: () => Promise<void>) {
    this.#jobId = jobId;
    replaceChildren(this.element, this.#cancel, this.#retry, this.#message);
    this.#cancel.addEventListener('click', () => {
      if (window.confirm(`Cancel job ${jobId}? Its unfinished stores will fail "cancelled".`))
        void this.#run('cancel', done);
    });
    this.#retry.addEventListener('click', () => {
      void this.#run('retry', done);
    });
    this.#sync();
  }

  /** The job as it stands: Cancel while it runs, Retry once it failed. */
  update(status: JobStatus): void {
    this.#status = status;
    this.#sync();
  }

  async #run(action: 'cancel' | 'retry', done: () => Promise<void>): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    this.#sync();
    this.#message.className = 'action-message';
    this.#message.textContent = action === 'cancel' ? 'Cancelling…' : 'Retrying…';
    try {
      const result = await api.act(this.#jobId, action);
      replaceChildren(this.#message, result.message);
      this.#status = result.status;
      await done();
    } catch (error) {
      this.#message.className = 'action-message bad';
      replaceChildren(this.#message, error instanceof Error ? error.message : String(error));
    } finally {
      this.#busy = false;
      this.#sync();
    }
  }

  #sync(): void {
    this.#cancel.disabled = this.#busy || this.#status !== 'ongoing';
    this.#retry.disabled = this.#busy || this.#status !== 'failed';
    this.element.setAttribute('aria-busy', String(this.#busy));
  }
}
