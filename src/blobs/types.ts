/**
 * Where attachment bytes live. An upload is a multipart upload: parts arrive in
 * any order, each streamed straight to the store, and `complete` joins them into
 * one object. Every method streams: no implementation holds a whole file (or
 * part) in memory. Two implementations: the local disk (disk.ts) and any
 * S3-compatible service (s3.ts); test/blobs/contract.ts runs against both.
 */
import type { Readable } from 'node:stream'

/** A stored part: its number and the store's tag for it (S3 ETag; disk: the part's size). */
export interface StoredPart {
  n: number
  etag: string
}

/** A byte range of an object, both ends inclusive (HTTP `Range` semantics). */
export interface ByteRange {
  start: number
  end: number
}

export interface BlobStore {
  readonly kind: 'disk' | 's3'
  /** Starts a multipart upload of `key`; answers the store's upload id. */
  beginUpload(key: string): Promise<string>
  /** Stores part `n` (from 0) of an upload from a stream of exactly `size` bytes; a part stored again replaces the first. */
  putPart(key: string, uploadId: string, n: number, body: Readable, size: number): Promise<StoredPart>
  /** Joins the parts, in order, into the object `key` and ends the upload. */
  completeUpload(key: string, uploadId: string, parts: StoredPart[]): Promise<void>
  /** Ends an upload and frees its parts (nothing happens for an unknown upload). */
  abortUpload(key: string, uploadId: string): Promise<void>
  /** Stores a small object whole (thumbnails). */
  put(key: string, body: Buffer, contentType: string): Promise<void>
  /** The object's bytes, or the range of them; throws BlobNotFoundError when absent. */
  read(key: string, range?: ByteRange): Promise<Readable>
  /** Size in bytes, or null when absent. */
  size(key: string): Promise<number | null>
  /** Removes the object (nothing happens when absent). */
  delete(key: string): Promise<void>
  /**
   * A short-lived URL that downloads the object directly, or null when the store
   * cannot sign one (the server then streams it).
   */
  signedUrl(key: string, opts: { filename: string; contentType: string; disposition: 'inline' | 'attachment' }): Promise<string | null>
}

export class BlobNotFoundError extends Error {
  constructor(key: string) {
    super(`no blob ${key}`)
    this.name = 'BlobNotFoundError'
  }
}
