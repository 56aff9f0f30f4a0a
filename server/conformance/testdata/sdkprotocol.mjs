// Protocol errors as the official MCP TypeScript SDK's client sees them,
// driven by protocol_test.go: requests with bad params, a cursor the server
// never issued, completions of what the server does not have, and a second initialize on a connected session. Each
// outcome is {code, message}; the report is one JSON line on stdout.
//
// env: SDK_DIR      the @modelcontextprotocol/sdk package folder
//      MODE         stdio | http
//      PONDER_URL   (http) the /mcp endpoint
//      PONDER_BIN   (stdio) the ponder binary; PONDER_* variables are passed on
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const sdk = process.env.SDK_DIR;
const load = (p) => import(pathToFileURL(path.join(sdk, 'dist', 'esm', p)).href);
const { Client } = await load('client/index.js');
const { StdioClientTransport } = await load('client/stdio.js');
const { StreamableHTTPClientTransport } = await load('client/streamableHttp.js');
const { GetPromptResultSchema, ReadResourceResultSchema, InitializeResultSchema } = await load('types.js');

const report = { errors: [] };
const client = new Client({ name: 'ponder-sdk-protocol-test', version: '1.0.0' }, { capabilities: {} });
client.onerror = (e) => report.errors.push(String(e?.message ?? e));

let transport;
if (process.env.MODE === 'stdio') {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('PONDER_') && k !== 'PONDER_BIN' && k !== 'PONDER_URL') env[k] = v;
  transport = new StdioClientTransport({ command: process.env.PONDER_BIN, args: ['serve', '--stdio'], env, stderr: 'inherit' });
} else {
  transport = new StreamableHTTPClientTransport(new URL(process.env.PONDER_URL));
}
await client.connect(transport);

const outcome = async (f) => {
  try {
    await f();
    return { code: 'resolved' };
  } catch (e) {
    return { code: e?.code ?? null, message: String(e?.message ?? e) };
  }
};

// Sent as written: the SDK's own helpers would type-check these params.
report.promptNonString = await outcome(() => client.request({ method: 'prompts/get',
  params: { name: 'solve_step_by_step', arguments: { problem: 42 } } }, GetPromptResultSchema));
report.readNoURI = await outcome(() => client.request({ method: 'resources/read', params: {} }, ReadResourceResultSchema));
report.badCursor = await outcome(() => client.listTools({ cursor: 'not-a-cursor' }));
report.foreignCursor = await outcome(() => client.listPrompts({ cursor: 'c29sdmVfc3RlcF9ieV9zdGVw' }));
// completion/complete of a prompt, argument or template the server lacks,
// and of one it has.
const complete = (ref, name) => outcome(() => client.complete({ ref, argument: { name, value: '' } }));
report.completeUnknownPrompt = await complete({ type: 'ref/prompt', name: 'test_prompt_with_arguments' }, 'arg1');
report.completeUnknownArgument = await complete({ type: 'ref/prompt', name: 'solve_step_by_step' }, 'strategi');
report.completeUnknownTemplate = await complete({ type: 'ref/resource', uri: 'test://template/{id}/data' }, 'id');
report.completeStrategy = (await client.complete({ ref: { type: 'ref/prompt', name: 'solve_step_by_step' },
  argument: { name: 'strategy', value: 'self' } })).completion.values;

report.sessionBefore = transport.sessionId ?? null;
report.reinitialize = await outcome(() => client.request({ method: 'initialize', params: {
  protocolVersion: '2025-06-18', capabilities: { sampling: {} }, clientInfo: { name: 'again', version: '2' } } },
InitializeResultSchema));
report.sessionAfter = transport.sessionId ?? null;

// The session goes on after every refusal.
report.tools = (await client.listTools()).tools.length;
await client.ping();
report.pinged = true;

await client.close();
console.log(JSON.stringify(report));
