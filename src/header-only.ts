/**
 * `--header-only`: the dimensions from as few bytes as the server lets us
 * read. A Range request first; if the header is not in it (a JPEG with a big
 * EXIF block, a TIFF with its IFD at the end), ranges that double the bytes
 * held until it is found or the file ends. A server that ignores Range sends
 * the whole file: it is read only until the size is known.
 */
import { DownloadError } from './errors.js';
import {
  discard,
  drop,
  ensureOk,
  ensureSize,
  httpGet,
  readBody,
  type AttemptContext,
  type HttpResponse,
} from './http-get.js';
import { HeaderProbe, type Measured } from './measure.js';

/** Most headers sit in the first 64 KiB; reading it whole keeps the connection reusable. */
export const FIRST_RANGE_BYTES = 64 * 1024;

type ContentRange = { readonly start: number; readonly end: number; readonly total?: number };

export async function measureHead(ctx: AttemptContext): Promise<Measured> {
  const probe = new HeaderProbe({ url: ctx.url });
  let url = new URL(ctx.url);
  let bytes = 0;
  for (let start = 0, length = FIRST_RANGE_BYTES; ; length = start) {
    const end = start + length - 1;
    const res = await httpGet(ctx, url, { range: `bytes=${start}-${end}` });
    url = res.url; // later ranges go straight to where the redirects led
    if (res.statusCode === 416) {
      await discard(res);
      if (start > 0) return { ...probe.finish(), bytes };
      // Some servers refuse any range of an empty file: ask for it plainly.
      return readUntilMeasured(ctx, await httpGet(ctx, url), bytes);
    }
    if (res.statusCode !== 206) return readUntilMeasured(ctx, res, bytes);
    const range = contentRange(ctx, res, start);
    ensureSize(ctx, res, range.total);
    try {
      await readBody(ctx, res, ctx.maxBytes - bytes, (chunk) => {
        bytes += chunk.length;
        probe.push(chunk);
        return true;
      });
    } catch (error) {
      // A range cut short after the header is no loss.
      if (!probe.dimensions) throw error;
    }
    const found = probe.settle();
    if (found) return { ...found, bytes };
    start = range.end + 1;
    const ended = range.total === undefined ? range.end < end : start >= range.total;
    if (ended) return { ...probe.finish(), bytes };
  }
}

/** A whole body (the server ignored Range): read until the size is known, then hang up. */
async function readUntilMeasured(
  ctx: AttemptContext,
  res: HttpResponse,
  before: number,
): Promise<Measured> {
  await ensureOk(ctx, res);
  ensureSize(ctx, res);
  const probe = new HeaderProbe({ url: ctx.url });
  const bytes = await readBody(ctx, res, ctx.maxBytes - before, (chunk) => !probe.push(chunk));
  return { ...probe.finish(), bytes: before + bytes };
}

function contentRange(ctx: AttemptContext, res: HttpResponse, start: number): ContentRange {
  const value = res.headers['content-range'];
  const match = typeof value === 'string' ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value) : null;
  const range = match && {
    start: Number(match[1]),
    end: Number(match[2]),
    ...(match[3] === '*' ? {} : { total: Number(match[3]) }),
  };
  if (range?.start === start && range.end >= start) return range;
  drop(res);
  throw new DownloadError(
    'E_HTTP_STATUS',
    `HTTP 206 with an unusable Content-Range: ${String(value)}`,
    { url: ctx.url, status: 206 },
  );
}
