/**
 * The config's JSON Schema (config/tokengate.schema.json, for editors), generated from the zod
 * schema the loader validates with, so the two cannot drift. `npm run schema` writes it.
 */
import { z } from 'zod';
import { configSchema } from './schema.js';

export const CONFIG_JSON_SCHEMA_FILE = 'config/tokengate.schema.json';

/** A value the loader replaces with an environment variable before validating (see load.ts). */
const VARIABLE_DEF = 'variable';
const variableSchema = {
  type: 'string',
  pattern: '^\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}$',
  description: '${VAR} or ${VAR:-default}: replaced by the environment variable before validation',
};

type JsonSchema = Record<string, unknown>;

const isObject = (value: unknown): value is JsonSchema => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A value that is one `${VAR}` takes the type it reads as (`port: ${PORT:-8080}` is a number), so
 * a typed or constrained scalar also accepts that string. Annotations stay on the outer schema,
 * where editors show them.
 */
function acceptVariable(schema: JsonSchema): JsonSchema {
  const typed = schema.type === 'integer' || schema.type === 'number' || schema.type === 'boolean';
  const constrained = schema.type === 'string' && (schema.enum !== undefined || schema.pattern !== undefined);
  if (!typed && !constrained) return schema;
  const { default: fallback, description, ...value } = schema;
  return {
    ...(description === undefined ? {} : { description }),
    ...(fallback === undefined ? {} : { default: fallback }),
    anyOf: [value, { $ref: `#/$defs/${VARIABLE_DEF}` }],
  };
}

/** Walks value positions only: map keys (propertyNames) are never substituted. */
function withVariables(schema: JsonSchema, isRoot = false): JsonSchema {
  const out: JsonSchema = { ...schema };
  if (isObject(schema.properties)) {
    out.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([key, child]) => [
        key,
        // Secret definitions are not substituted: they have `env` for that.
        isRoot && key === 'secrets' ? child : withVariables(child as JsonSchema),
      ]),
    );
  }
  if (isObject(schema.additionalProperties)) out.additionalProperties = withVariables(schema.additionalProperties);
  if (isObject(schema.items)) out.items = withVariables(schema.items);
  for (const combinator of ['anyOf', 'oneOf', 'allOf'] as const) {
    const branches = schema[combinator];
    if (Array.isArray(branches)) out[combinator] = branches.map((branch: JsonSchema) => withVariables(branch));
  }
  return acceptVariable(out);
}

/** The JSON Schema of the config file as written (input side: keys with defaults are optional). */
function configJsonSchema(): JsonSchema {
  const generated = z.toJSONSchema(configSchema, { io: 'input', target: 'draft-2020-12' }) as JsonSchema;
  const { $schema, ...body } = generated;
  return {
    $schema,
    title: 'tokengate gateway config',
    description:
      'Routes, client connections and secrets of the tokengate outbound OAuth 2.0 gateway. ' +
      'Generated from src/config/schema.ts by `npm run schema`; do not edit.',
    ...withVariables(body, true),
    $defs: { [VARIABLE_DEF]: variableSchema },
  };
}

/** The committed file's exact text. */
export function renderConfigJsonSchema(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
