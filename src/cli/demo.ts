/**
 * `npm run demo`: the demo jobs against RUNWATCH_URL (default http://127.0.0.1:4000)
 * with RUNWATCH_TOKEN. Same as `runwatch demo`.
 */
import { connect } from './connection.js';
import { runDemo } from './demo-jobs.js';

const client = connect({});
await runDemo(client, { onStart: (id, name) => process.stdout.write(`started ${id}  ${name}\n`) });
await client.close();
