"""A hostile MCP server over stdio: it answers like a server, but one answer
is a single line of FLOOD_MB mebibytes (a tools/call of "flood", or the
tools/list itself when started with the argument "list"). Ponder must not
hold that line whole. With the argument "silent" it answers nothing to the
requests it does not know."""
import json
import os
import sys

MODE = sys.argv[1] if len(sys.argv) > 1 else "call"
FLOOD = int(os.environ.get("FLOOD_MB", "1024")) << 20


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def flood(id_):
    # The head of a valid answer, then FLOOD bytes of text, then its tail.
    head = '{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"' % json.dumps(id_)
    chunk = "x" * (1 << 20)
    out = sys.stdout
    try:
        out.write(head)
        for _ in range(FLOOD >> 20):
            out.write(chunk)
        out.write('"}]}}\n')
        out.flush()
    except BrokenPipeError:
        os._exit(0)


TOOLS = [
    {"name": "flood", "description": "answers with a huge line", "inputSchema": {"type": "object"}},
    {"name": "echo", "description": "echoes", "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}}},
]

for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg:
        continue  # a notification
    method, id_ = msg.get("method"), msg["id"]
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": id_, "result": {"protocolVersion": msg["params"]["protocolVersion"],
              "capabilities": {"tools": {}}, "serverInfo": {"name": "flood", "version": "1"}}})
    elif method == "tools/list":
        if MODE == "list":
            flood(id_)
        else:
            send({"jsonrpc": "2.0", "id": id_, "result": {"tools": TOOLS}})
    elif method == "tools/call" and msg["params"]["name"] == "flood":
        flood(id_)
    elif method == "tools/call":
        text = "Echo: " + msg["params"].get("arguments", {}).get("message", "")
        send({"jsonrpc": "2.0", "id": id_, "result": {"content": [{"type": "text", "text": text}]}})
    elif MODE == "silent":
        continue  # drops requests it does not know (server/discover), as some old servers do
    else:
        send({"jsonrpc": "2.0", "id": id_, "result": {}})
