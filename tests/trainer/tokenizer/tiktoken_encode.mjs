// Encodes a UTF-8 file with js-tiktoken's r50k_base (GPT-2), special tokens as plain text, and
// writes the ids as little-endian int32 to OUT; prints the encode's CPU time in seconds on stdout
// (CPU time, not wall time: the test machine may be shared).
// Usage: node tiktoken_encode.mjs JS_TIKTOKEN_DIR IN OUT
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [moduleDir, input, output] = process.argv.slice(2);
const { getEncoding } = await import(pathToFileURL(path.join(moduleDir, "dist", "index.js")).href);
const text = fs.readFileSync(input, "utf8");
const enc = getEncoding("r50k_base");
enc.encode("warm up the JIT: Hello world, it's 2024! 🙂", [], []);
const start = process.cpuUsage();
const ids = enc.encode(text, [], []);
const used = process.cpuUsage(start);
const seconds = (used.user + used.system) / 1e6;
fs.writeFileSync(output, Buffer.from(Int32Array.from(ids).buffer));
console.log(seconds.toFixed(4));
