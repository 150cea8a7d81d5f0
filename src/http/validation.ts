/**
 * Request validation with TypeBox's compiler (its formats: uuid, email, date-time…).
 * Bodies are checked as sent: JSON already has types, and coercing `null` to ""
 * or 5 to "5" would hide client mistakes. Query strings, params and headers are
 * strings on the wire, so they are converted to the schema's types first.
 * Defaults declared in a schema are filled in either way.
 */
import type { FastifySchemaCompiler } from 'fastify'
import { Compile } from 'typebox/compile'
import { Value } from 'typebox/value'
import type { TSchema } from 'typebox'

export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema)
  return (input: unknown) => {
    let value = input
    if (httpPart !== 'body') value = Value.Convert(schema, value)
    if (value !== undefined && value !== null && typeof value === 'object') value = Value.Default(schema, value)
    if (check.Check(value)) return { value }
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
