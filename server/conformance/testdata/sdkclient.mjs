// A Ponder client built on the official MCP TypeScript SDK, driven by
// client_test.go. It connects over stdio (spawning `ponder serve --stdio`)
// or streamable HTTP, runs one scenario and prints a JSON report on stdout.
//
// env: SDK_DIR      the @modelcontextprotocol/sdk package folder
//      MODE         stdio | http
//      PONDER_URL   (http) the /mcp endpoint
//      PONDER_BIN   (stdio) the ponder binary; PONDER_* variables are passed on
//      SCENARIO     main | sampling (with a cancelled solve) | nosampling
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const sdk = process.env.SDK_DIR;
const load = (p) => import(pathToFileURL(path.join(sdk, 'dist', 'esm', p)).href);
const { Client } = await load('client/index.js');
const { StdioClientTransport } = await load('client/stdio.js');
const { StreamableHTTPClientTransport } = await load('client/streamableHttp.js');
const { CreateMessageRequestSchema } = await load('types.js');

const scenario = process.env.SCENARIO || 'main';
const report = { scenario, errors: [] };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const sampling = scenario === 'sampling';
let slowModel = null;
const client = new Client({ name: 'ponder-sdk-test', version: '1.0.0' },
  { capabilities: sampling ? { sampling: {} } : {} });
client.onerror = (e) => report.errors.push(String(e?.message ?? e));

if (sampling) {
  report.sampling = { requests: 0, maxInFlight: 0 };
  let inFlight = 0;
  client.setRequestHandler(CreateMessageRequestSchema, async (req, extra) => {
    report.sampling.requests++;
    inFlight++;
    report.sampling.maxInFlight = Math.max(report.sampling.maxInFlight, inFlight);
    report.sampling.lastMessage = req.params.messages.at(-1)?.content?.text?.slice(0, 80);
    if (slowModel) {
      // The model (or its user) takes its time: until Ponder cancels the
      // request, which aborts this handler's signal.
      slowModel.asked++;
      await new Promise((resolve) => {
        const t = setTimeout(resolve, 30000);
        extra.signal.addEventListener('abort', () => { clearTimeout(t); slowModel.aborted++; resolve(); });
      });
      inFlight--;
      throw new Error('cancelled');
    }
    await sleep(20);
    inFlight--;
    return { role: 'assistant', model: 'client-model', stopReason: 'endTurn',
      content: { type: 'text', text: '17 * 23 = 391. The answer is \\boxed{391}.' } };
  });
}

let transport;
if (process.env.MODE === 'stdio') {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('PONDER_') && k !== 'PONDER_BIN' && k !== 'PONDER_URL') env[k] = v;
  transport = new StdioClientTransport({ command: process.env.PONDER_BIN, args: ['serve', '--stdio'], env, stderr: 'inherit' });
} else {
  transport = new StreamableHTTPClientTransport(new URL(process.env.PONDER_URL));
}
await client.connect(transport);

const tools = await client.listTools();
report.tools = tools.tools.map((t) => t.name).sort();
report.server = client.getServerVersion();

async function solve(args, extra = {}) {
  const progress = [];
  const res = await client.callTool({ name: 'solve', arguments: args }, undefined,
    { onprogress: (p) => progress.push(p), timeout: 60000, ...extra });
  return { isError: res.isError ?? false, structured: res.structuredContent, text: res.content?.[0]?.text, progress };
}

if (scenario === 'main') {
  report.solve = await solve({ problem: 'What is 17 * 23?', strategy: 'self-consistency', params: { k: 4 }, budget: { llm_calls: 4 } });

  // Cancel a slow solve as soon as it reports progress.
  const ac = new AbortController();
  let firstProgress = null;
  const started = Date.now();
  try {
    await client.callTool({ name: 'solve', arguments: { problem: 'What is 19 * 21?', strategy: 'self-consistency',
      params: { k: 100 }, budget: { llm_calls: 100 } } }, undefined,
    { signal: ac.signal, timeout: 60000, onprogress: (p) => { if (!firstProgress) { firstProgress = p; ac.abort('the user pressed stop'); } } });
    report.cancel = { resolved: true };
  } catch (e) {
    report.cancel = { rejected: true, message: String(e?.message ?? e), afterMs: Date.now() - started, firstProgress };
  }
  // Give a (wrong) response to the cancelled request time to arrive: the
  // SDK would report it through onerror.
  await sleep(700);
  const list = await client.readResource({ uri: 'ponder://traces' });
  report.traces = JSON.parse(list.contents[0].text).traces.map((t) => ({ id: t.id, status: t.status, llm_calls: t.usage.llm_calls, problem: t.problem }));

  // Documents: add one inline, find it again.
  const ing = await client.callTool({ name: 'ingest_documents', arguments: { texts: [{ name: 'refunds.md', text: '# Refunds\n\nRefunds are issued within 14 days of a return, to the original card.' }] } });
  report.ingest = { isError: ing.isError ?? false, structured: ing.structuredContent, text: ing.content?.[0]?.text };
  const found = await client.callTool({ name: 'search_documents', arguments: { query: 'how long do refunds take', k: 3 } });
  report.search = { isError: found.isError ?? false, structured: found.structuredContent, text: found.content?.[0]?.text };

  // Bad input: the server answers with errors and keeps going.
  try {
    await client.callTool({ name: 'no_such_tool', arguments: {} });
    report.unknownTool = 'resolved';
  } catch (e) {
    report.unknownTool = String(e?.code ?? e);
  }
  const bad = await client.callTool({ name: 'solve', arguments: { problem: 42 } });
  report.badArgs = { isError: bad.isError ?? false, text: bad.content?.[0]?.text };
  // Protocol errors carry the code the spec gives them (mcp-go sent -32603).
  const code = async (f) => { try { await f(); return 'resolved'; } catch (e) { return String(e?.code ?? e); } };
  report.promptMissingArg = await code(() => client.getPrompt({ name: 'solve_step_by_step', arguments: {} }));
  report.unknownTrace = await code(() => client.readResource({ uri: 'ponder://traces/no-such-trace' }));
  report.ping = await client.ping();
} else {
  report.solve = await solve({ problem: 'What is 17 * 23?', strategy: 'self-consistency', params: { k: 6 } });
  if (sampling) {
    const before = report.sampling.requests;
    report.budgeted = await solve({ problem: 'What is 17 * 23?', strategy: 'self-consistency', params: { k: 6 }, budget: { llm_calls: 3 } });
    report.budgetedRequests = report.sampling.requests - before;

    // Cancel a solve while the client's model is answering: Ponder cancels
    // its sampling requests too.
    slowModel = { asked: 0, aborted: 0 };
    const ac = new AbortController();
    const cancelled = client.callTool({ name: 'solve', arguments: { problem: 'What is 19 * 21?', strategy: 'self-consistency', params: { k: 6 } } },
      undefined, { signal: ac.signal, timeout: 60000 }).then(() => 'resolved', (e) => String(e?.message ?? e));
    for (let i = 0; i < 200 && slowModel.asked < 2; i++) await sleep(10);
    ac.abort('the user pressed stop');
    const outcome = await cancelled;
    for (let i = 0; i < 1000 && slowModel.aborted < slowModel.asked; i++) await sleep(10); // up to 10 s on a loaded machine
    report.samplingCancel = { ...slowModel, outcome };
  }
}

await client.close();
console.log(JSON.stringify(report));
