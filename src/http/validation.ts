/**
 * Request validation with TypeBox's compiler (its formats: uuid, email, date-time…).
 * Bodies are checked as sent: JSON already has types, and coercing `null` to ""
 * or 5 to "5" would hide client mistakes. Query strings, params and headers are
 * strings on the wire, so they are converted to the schema's types first.
 * Defaults declared in a schema are filled in either way. Strings that are not
 * Unicode text (an unpaired surrogate, U+0000) are refused naming the field,
 * except in schemas marked as task content (see text.ts).
 */
import type { FastifySchemaCompiler } from 'fastify'
import { Compile } from 'typebox/compile'
import { Value } from 'typebox/value'
import type { TSchema } from 'typebox'
import { findBadText } from './text.js'

export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema)
  return (input: unknown) => {
    let value = input
    if (httpPart !== 'body') value = Value.Convert(schema, value)
    if (value !== undefined && value !== null && typeof value === 'object') value = Value.Default(schema, value)
    if (check.Check(value)) {
      // Valid in shape; now every string must be Unicode text (task content aside: the op type checks it).
      const bad = findBadText(schema as unknown as Record<string, unknown>, value)
      if (!bad) return { value }
      return { error: [{ keyword: 'text', instancePath: bad.path, schemaPath: '#', params: {}, message: bad.message }] as never }
    }
    const errors = [...check.Errors(value)].slice(0, 10).map((e) => ({
      keyword: e.keyword,
      instancePath: e.instancePath,
      schemaPath: e.schemaPath,
      params: e.params,
      // TypeBox reports an extra property as "schema is false" on the property itself.
      message: e.keyword === 'boolean' && e.instancePath ? 'is not an allowed property' : e.message,
    }))
    return { error: errors as never }
  }
}
