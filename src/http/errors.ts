/**
 * The one place where failures become HTTP answers: every error leaves as
 * `{error: {code, message, details?}}` with the status of PROTOCOL.md section 3.
 * Client mistakes never answer 5xx; anything unexpected is logged and is `internal`.
 */
import fp from 'fastify-plugin'
import type { FastifyError, FastifyBaseLogger } from 'fastify'
import { ERROR_STATUS, type ErrorBody, type ErrorCode } from '../protocol/errors.js'
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

export default fp(
  async (app) => {
    app.setErrorHandler((err, request, reply) => {
      const { status, body } = toErrorBody(err, request.log)
      return reply.code(status).send(body)
    })
    app.setNotFoundHandler((request, reply) => {
      const body: ErrorBody = { error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } }
      return reply.code(404).send(body)
    })
  },
  { name: 'errors' },
)
