/**
 * `--header-only`: the dimensions from as few bytes as the server lets us
 * read. A Range request first; if the header is not in it (a JPEG with a big
 * EXIF block, a TIFF with its IFD at the end), ranges that double the bytes
 * held until it is found or the file ends. A server that ignores Range sends
 * the whole file: it is read only until the size is known.
 */
import { badContentRange } from './errors.js';
import { httpGet, type AttemptContext, type GetResult } from './get-handler.js';
import { ensureSize, okOrDiscard, type BodyPlan, type ResponseHead } from './response.js';
import { HeaderProbe, type Measured } from './measure.js';

/** Most headers sit in the first 64 KiB; reading it whole keeps the connection reusable. */
export const FIRST_RANGE_BYTES = 64 * 1024;
const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

/** `total` is undefined when the server does not know it (`*`). */
type ContentRange = {
  readonly start: number;
  readonly end: number;
  readonly total: number | undefined;
};

export async function measureHead(ctx: AttemptContext): Promise<Measured> {
  const probe = new HeaderProbe({ url: ctx.url });
  let url = ctx.target;
  let bytes = 0;
  for (let start = 0, length = FIRST_RANGE_BYTES; ; length = start) {
    const end = start + length - 1;
    // What the response turned out to be: the range asked for, or a whole body.
    const seen: { range?: ContentRange; whole?: HeaderProbe } = {};
    let got: GetResult | undefined;
    try {
      got = await httpGet(ctx, url, { range: `bytes=${start}-${end}` }, (head) => {
        if (head.statusCode === 416) return { discard: true };
        if (head.statusCode !== 206) {
          seen.whole = new HeaderProbe({ url: ctx.url });
          return readUntilMeasured(ctx, head, seen.whole, bytes);
        }
        probe.contentType = head.headers['content-type']?.toString();
        const declared = contentRange(ctx, head, start);
        ensureSize(ctx, head, declared.total);
        seen.range = declared;
        // The range is read whole (that keeps the connection), then measured once.
        return {
          limit: ctx.maxBytes - bytes,
          onChunk: (chunk) => {
            bytes += chunk.length;
            return probe.hold(chunk);
          },
        };
      });
    } catch (error) {
      // A range cut short after the header is no loss.
      if (!seen.range || !probe.settle()) throw error;
    }
    if (got) url = got.head.url; // later ranges go straight to where the redirects led
    const { range, whole } = seen;
    if (whole) return { ...whole.finish(), bytes: bytes + (got?.received ?? 0) };
    if (!range) {
      // 416. Some servers refuse any range of an empty file: ask for it plainly.
      if (start > 0) return { ...probe.finish(), bytes };
      const plain = new HeaderProbe({ url: ctx.url });
      const { received } = await httpGet(ctx, url, undefined, (head) =>
        readUntilMeasured(ctx, head, plain, bytes),
      );
      return { ...plain.finish(), bytes: bytes + received };
    }
    const found = probe.settle();
    if (found) return { ...found, bytes };
    const { end: last, total } = range;
    start = last + 1;
    const ended = total === undefined ? last < end : start >= total;
    if (ended) return { ...probe.finish(), bytes };
  }
}

/** A whole body (the server ignored Range): read until the size is known, then hang up. */
function readUntilMeasured(
  ctx: AttemptContext,
  head: ResponseHead,
  probe: HeaderProbe,
  before: number,
): BodyPlan {
  const failed = okOrDiscard(ctx, head);
  if (failed) return failed;
  ensureSize(ctx, head);
  probe.contentType = head.headers['content-type']?.toString();
  return { limit: ctx.maxBytes - before, onChunk: (chunk) => !probe.push(chunk) };
}

function contentRange(ctx: AttemptContext, head: ResponseHead, start: number): ContentRange {
  const value = head.headers['content-range'];
  const match = typeof value === 'string' ? CONTENT_RANGE.exec(value) : null;
  const range: ContentRange | null = match && {
    start: Number(match[1]),
    end: Number(match[2]),
    total: match[3] === '*' ? undefined : Number(match[3]),
  };
  if (range?.start === start && range.end >= start) return range;
  throw badContentRange(ctx.url, value);
}
