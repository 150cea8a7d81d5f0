/**
 * The one place where failures become HTTP answers: every error leaves as
 * `{error: {code, message, details?}}` with the status of PROTOCOL.md section 3.
 * Client mistakes never answer 5xx; anything unexpected is logged and is `internal`.
 */
import fp from 'fastify-plugin'
import type { FastifyError, FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { Socket } from 'node:net'
import { ERROR_STATUS, TaskSyncError, type ErrorBody, type ErrorCode } from '../protocol/errors.js'
import { clientError } from '../storage/errors.js'

/** Status of fastify's own 4xx errors mapped to our codes; others are bad_request. */
const BY_STATUS: Record<number, ErrorCode> = {
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  413: 'too_large',
  429: 'rate_limited',
}

interface ValidationIssue {
  instancePath?: string
  message?: string
}

/** Classifies any thrown value into our vocabulary; logs what is our fault. */
export function toErrorBody(err: unknown, log?: FastifyBaseLogger): { status: number; body: ErrorBody } {
  const make = (code: ErrorCode, message: string, details?: unknown) => ({
    status: ERROR_STATUS[code],
    body: { error: details === undefined ? { code, message } : { code, message, details } },
  })
  const known = clientError(err, log)
  if (known) return make(known.code, known.message, known.details)
  const fe = err as FastifyError & { validation?: ValidationIssue[]; validationContext?: string }
  if (fe?.validation) {
    const details = fe.validation.map((v) => ({ in: fe.validationContext, path: v.instancePath || '/', message: v.message }))
    return make('bad_request', fe.message || 'invalid request', details)
  }
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500
  if (status >= 400 && status < 500) return make(BY_STATUS[status] ?? 'bad_request', fe.message || 'bad request')
  log?.error({ err }, 'unexpected error')
  return make('internal', 'internal error')
}

/**
 * `frameworkErrors` of the fastify instance: what the router refuses before any
 * route or hook runs (a URL that does not decode, a parameter over maxParamLength,
 * which fastify would answer 414) gets the same classification as everything else.
 */
export function answerFrameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const { status, body } = toErrorBody(err, request.log)
  void reply.code(status).send(body)
}

/** Node's parser errors, which never reach fastify's routing: status, code and message. */
function clientErrorAnswer(code: string | undefined): [number, ErrorCode, string] {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'bad_request', 'the request was not received in time']
  if (code === 'HPE_HEADER_OVERFLOW') return [413, 'too_large', 'the request head is too large']
  return [400, 'bad_request', 'malformed HTTP request']
}

/**
 * `clientErrorHandler` of the fastify instance: a request Node could not parse, or
 * whose head or body did not arrive in time, is answered in the contract's shape
 * (408 for a timeout, where no answer has begun) and the connection is closed.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const response = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (!socket.writable || response?.headersSent) {
    socket.destroy()
    return
  }
  const [status, code, message] = clientErrorAnswer(err.code)
  const body = JSON.stringify({ error: { code, message } } satisfies ErrorBody)
  const reason = status === 408 ? 'Request Timeout' : status === 413 ? 'Payload Too Large' : 'Bad Request'
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  // A peer that never reads must not keep the socket: the answer had its chance.
  setTimeout(() => socket.destroy(), 5000).unref()
}

export default fp(
  async (app) => {
    app.setErrorHandler((err, request, reply) => {
      const { status, body } = toErrorBody(err, request.log)
      // An error that says when to come back (`details.retryAfterS`: a throttle, the catch-up gate) says it in the header too.
      const retry = err instanceof TaskSyncError ? (err.details as { retryAfterS?: unknown } | undefined)?.retryAfterS : undefined
      if (typeof retry === 'number' && !reply.hasHeader('retry-after')) reply.header('retry-after', String(retry))
      return reply.code(status).send(body)
    })
    app.setNotFoundHandler((request, reply) => {
      const body: ErrorBody = { error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } }
      return reply.code(404).send(body)
    })
  },
  { name: 'errors' },
)
