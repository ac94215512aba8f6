// @ts-check
/**
 * Ideal schedules with zero overhead, to compare imgjob's wall time with: a
 * store is a job of `images × gpu delay` ms that holds one of `machines`
 * slots (`-c`) from start to end.
 */

/**
 * Makespan of list scheduling: each store in turn goes to the slot that
 * frees first.
 *
 * @param {readonly number[]} durations In the order they are started.
 * @param {number} machines
 * @returns {number}
 */
export function listMakespan(durations, machines) {
  if (!Number.isInteger(machines) || machines < 1) {
    throw new RangeError(
      `Expected \`machines\` to be a whole number from 1 and up, got \`${machines}\``,
    );
  }
  /** @type {number[]} when each slot is free again */
  const free = Array.from({ length: Math.min(machines, Math.max(durations.length, 1)) }, () => 0);
  for (const duration of durations) {
    let earliest = 0;
    free.forEach((at, slot) => {
      if (at < (free[earliest] ?? 0)) earliest = slot;
    });
    free[earliest] = (free[earliest] ?? 0) + duration;
  }
  return Math.max(0, ...free);
}

/**
 * Longest-processing-time-first: the ideal order for store slots.
 *
 * @param {readonly number[]} durations
 * @param {number} machines
 * @returns {number}
 */
export function lptMakespan(durations, machines) {
  return listMakespan(
    [...durations].sort((a, b) => b - a),
    machines,
  );
}

/**
 * Manifest order (first in, first out).
 *
 * @param {readonly number[]} durations
 * @param {number} machines
 * @returns {number}
 */
export function fifoMakespan(durations, machines) {
  return listMakespan(durations, machines);
}
