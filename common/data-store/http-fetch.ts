// Fetching an http(s) URL into the data cache. A cached copy is revalidated with the ETag or
// Last-Modified it was served with (304: the cached bytes, checked against the SHA-256 recorded
// when they were fetched); a body is checked against Content-Length, and against the URL's
// `#sha256=` digest when it has one (then a cached copy with that digest needs no request at
// all). A connection dropped mid-body resumes with a Range request when the server offers
// ranges and a validator (If-Range makes it send the whole body again if the file changed), and
// starts over otherwise.
import { DatasetError, errorMessage } from '../errors.js';
import type { Logger } from '../logging.js';
import { BlobWriter, type DataCache, type HttpCacheRecord } from './cache.js';
import { IdleTimer, withRetry, type RetryPolicy } from './retry.js';

/** A failure worth another attempt (the server answered 5xx, 408 or 429, or the connection broke). */
class TransientHttpError extends Error {}

export interface HttpFetchResult {
  sha256: string;
  size: number;
  /** Bytes that came over the network (0 when the cached copy was still current). */
  fetchedBytes: number;
}

/** A strong validator for If-Range: a strong ETag, else Last-Modified. */
function validatorOf(res: Response): string | undefined {
  const etag = res.headers.get('etag');
  if (etag !== null && !etag.startsWith('W/')) return etag;
  return res.headers.get('last-modified') ?? undefined;
}

function statusError(url: string, res: Response): Error {
  const text = `${url}: HTTP ${res.status} ${res.statusText}`;
  return res.status >= 500 || res.status === 408 || res.status === 429 ? new TransientHttpError(text) : new DatasetError(text);
}

/**
 * Makes the current content of `url` a verified blob of `cache` and returns its digest. `cached`
 * is what the cache recorded for the URL (its blob is known to be present and intact).
 */
export async function fetchHttp(
  url: string,
  cache: DataCache,
  opts: { cached?: HttpCacheRecord; expectedSha256?: string; retry: RetryPolicy; log: Logger; onBytes?: (received: number, total: number | undefined) => void | Promise<void> },
): Promise<HttpFetchResult> {
  // The bytes received so far, kept across attempts; `resumable` when the server can send the rest.
  let writer: BlobWriter | undefined;
  let resumable: { validator: string; total?: number } | undefined;
  let fetchedBytes = 0;
  try {
    return await withRetry(url, opts.retry, opts.log, async () => {
      const headers: Record<string, string> = {};
      const resuming = writer !== undefined && resumable !== undefined && writer.bytes > 0;
      if (resuming) {
        headers.range = `bytes=${writer!.bytes}-`;
        headers['if-range'] = resumable!.validator;
      } else if (opts.cached !== undefined) {
        if (opts.cached.etag !== undefined) headers['if-none-match'] = opts.cached.etag;
        else if (opts.cached.lastModified !== undefined) headers['if-modified-since'] = opts.cached.lastModified;
      }
      const abort = new AbortController();
      const idle = new IdleTimer(opts.retry.idleMs, url, () => abort.abort());
      try {
        let res: Response;
        try {
          res = await Promise.race([fetch(url, { headers, signal: abort.signal, redirect: 'follow' }), idle.expired]);
        } catch (err) {
          throw new TransientHttpError(`${url}: ${errorMessage(err)}${err instanceof Error && err.cause ? ` (${errorMessage(err.cause)})` : ''}`);
        }
        if (res.status === 304 && opts.cached !== undefined && !resuming) {
          await res.body?.cancel();
          return { sha256: opts.cached.sha256, size: opts.cached.size, fetchedBytes: 0 };
        }
        let total: number | undefined;
        if (res.status === 206 && resuming) {
          const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
          if (range === null || Number(range[1]) !== writer!.bytes) {
            await res.body?.cancel();
            await writer!.reset();
            resumable = undefined;
            throw new TransientHttpError(`${url}: asked for bytes ${headers.range!.slice(6)}, the server sent ${res.headers.get('content-range') ?? 'no Content-Range'}; starting over`);
          }
          total = range[3] === '*' ? resumable!.total : Number(range[3]);
        } else if (res.status === 200) {
          // The whole body (the first time, or the file changed since the partial one).
          if (writer !== undefined) await writer.reset();
          else writer = await BlobWriter.create(cache);
          const length = res.headers.get('content-length');
          total = length !== null && res.headers.get('content-encoding') === null ? Number(length) : undefined;
          const validator = validatorOf(res);
          resumable = res.headers.get('accept-ranges') === 'bytes' && validator !== undefined ? { validator, ...(total !== undefined ? { total } : {}) } : undefined;
        } else {
          await res.body?.cancel();
          throw statusError(url, res);
        }
        const w = writer!;
        const body = (res.body as ReadableStream<Uint8Array> | null) ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
        const reader = body.getReader();
        try {
          for (;;) {
            const { done, value } = await Promise.race([reader.read(), idle.expired]);
            if (done) break;
            idle.touch();
            await w.write(value);
            fetchedBytes += value.byteLength;
            await opts.onBytes?.(w.bytes, total);
            idle.touch();
          }
          if (total !== undefined && w.bytes !== total) throw new Error(`the body ended after ${w.bytes} of ${total} bytes`);
        } catch (err) {
          void reader.cancel().catch(() => undefined);
          if (resumable === undefined) await w.reset();
          throw new TransientHttpError(`${url}: transfer broken after ${w.bytes} bytes (${resumable ? 'resuming' : 'starting over'}): ${errorMessage(err)}`);
        }
        writer = undefined;
        resumable = undefined;
        const committed = await w.commit(url, opts.expectedSha256 === undefined ? undefined : { sha256: opts.expectedSha256, source: 'the digest in the URL (#sha256=)' });
        const etag = res.headers.get('etag');
        const lastModified = res.headers.get('last-modified');
        cache.writeHttpRecord({
          url,
          ...(etag !== null ? { etag } : {}),
          ...(lastModified !== null ? { lastModified } : {}),
          size: committed.size,
          sha256: committed.sha256,
          fetchedAt: new Date().toISOString(),
        });
        return { ...committed, fetchedBytes };
      } finally {
        idle.stop();
      }
    });
  } finally {
    await writer?.discard();
  }
}
