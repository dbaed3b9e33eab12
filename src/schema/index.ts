/**
 * The schema: one import per area, then `toSchema()`.
 */
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
import './jobs.js';
import './job-updates.js';
import './progress.js';
import './share.js';
import './commands.js';
import './training.js';
import './activity.js';
import './webhooks.js';
import './results.js';

/** The runwatch GraphQL schema. */
export const schema: GraphQLSchema = builder.toSchema();

/** The schema as SDL, sorted, as committed in schema.graphql. */
export const printSortedSchema = (): string => `${printSchema(lexicographicSortSchema(schema))}\n`;
