/**
 * graphql-codegen: typed documents for the SDK and CLI, from the printed
 * schema.graphql and the operations in clients/typescript/src/client/documents/*.graphql.
 * Output: clients/typescript/src/client/generated/ (committed; the client package). `CODEGEN_OUT` redirects it,
 * which the staleness test uses to regenerate into a temp dir and compare.
 * `CODEGEN_SCHEMA_URL` (with `CODEGEN_TOKEN`, a bearer token) reads the schema
 * from a running server by introspection instead of from schema.graphql.
 */
import type { CodegenConfig } from '@graphql-codegen/cli';

const out = process.env.CODEGEN_OUT ?? 'clients/typescript/src/client/generated/';

const schemaUrl = process.env.CODEGEN_SCHEMA_URL;
const schema: CodegenConfig['schema'] = schemaUrl
  ? [{ [schemaUrl]: { headers: { Authorization: `Bearer ${process.env.CODEGEN_TOKEN ?? ''}` } } }]
  : 'schema.graphql';

const config: CodegenConfig = {
  schema,
  documents: ['clients/typescript/src/client/documents/*.graphql'],
  ignoreNoDocuments: false,
  generates: {
    [out]: {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        documentMode: 'string',
        emitLegacyCommonJSImports: false,
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: 'string', JSON: 'unknown', ID: 'string' },
        avoidOptionals: { field: true, inputValue: false, object: true, defaultValue: false },
      },
    },
  },
};

export default config;
