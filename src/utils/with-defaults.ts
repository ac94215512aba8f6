/**
 * `given` laid over `defaults`, as ky's `normalize` does at its entry: an
 * option left out or given as `undefined` takes its default, so the code past
 * the entry reads every option without a fallback of its own.
 */
export function withDefaults<Given extends object, Defaults extends object>(
  given: Given | undefined,
  defaults: Defaults,
): Given & Defaults {
  const merged: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const [key, value] of Object.entries(given ?? {})) {
    if (value !== undefined) merged[key] = value;
  }
  return merged as Given & Defaults;
}

/**
 * `T` with every option present and defined: the type of a defaults object
 * (`Required<T>` keeps an optional option's `| undefined` under
 * `exactOptionalPropertyTypes`).
 */
export type Defaults<T> = { readonly [K in keyof T]-?: Exclude<T[K], undefined> };
