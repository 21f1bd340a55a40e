#!/usr/bin/env node
// Compile contracts/*.sol with the pinned solc-js (package.json) through its standard-JSON
// interface and write ABI + bytecode artifacts into src/gridledger/ledger/artifacts/, plus a
// Hardhat-style build-info folder (artifacts/build-info/) for Slither.
//   node scripts/compile_contracts.mjs           write the artifacts
//   node scripts/compile_contracts.mjs --check   recompile, fail (exit 1) if they differ
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const contractsDir = path.join(root, "contracts");
const outDir = path.join(root, "src", "gridledger", "ledger", "artifacts");
const check = process.argv.includes("--check");

const settings = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 200 },
  viaIR: false,
  metadata: { bytecodeHash: "none" },
  outputSelection: {
    "*": {
      "*": [
        "abi",
        "evm.bytecode.object",
        "evm.bytecode.sourceMap",
        "evm.deployedBytecode.object",
        "evm.deployedBytecode.sourceMap",
        "evm.methodIdentifiers",
        "metadata",
      ],
      "": ["ast"],
    },
  },
};

const sources = {};
for (const file of fs.readdirSync(contractsDir).filter((f) => f.endsWith(".sol")).sort()) {
  const key = `contracts/${file}`;
  sources[key] = { content: fs.readFileSync(path.join(contractsDir, file), "utf8") };
}
const input = { language: "Solidity", sources, settings };
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length > 0) process.exit(2);

const version = solc.version();
const files = {};
const stable = (obj) => JSON.stringify(obj, null, 2) + "\n";
for (const [source, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    if (!c.evm.bytecode.object) continue; // abstract contracts
    files[`${name}.json`] = stable({
      contractName: name,
      sourceName: source,
      compiler: { name: "solc-js", version, settings: { evmVersion: settings.evmVersion, optimizer: settings.optimizer, viaIR: settings.viaIR, metadata: settings.metadata } },
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
      methodIdentifiers: c.evm.methodIdentifiers,
    });
  }
}
// Hardhat-style build info: {id, _format, solcVersion, solcLongVersion, input, output}.
const longVersion = version.replace(/\.Emscripten\.clang$/, "");
const shortVersion = longVersion.split("+")[0];
const id = crypto.createHash("sha256").update(JSON.stringify(input) + longVersion).digest("hex").slice(0, 32);
files[path.join("build-info", `${id}.json`)] = JSON.stringify({
  id, _format: "hh-sol-build-info-1", solcVersion: shortVersion, solcLongVersion: longVersion, input, output,
}) + "\n";

let differ = [];
if (check) {
  const existing = new Set();
  const walk = (dir, rel) => {
    if (!fs.existsSync(dir)) return;
    for (const f of fs.readdirSync(dir)) {
      const p = path.join(dir, f);
      if (fs.statSync(p).isDirectory()) walk(p, path.join(rel, f));
      else if (f.endsWith(".json")) existing.add(path.join(rel, f));
    }
  };
  walk(outDir, "");
  for (const [rel, text] of Object.entries(files)) {
    const p = path.join(outDir, rel);
    if (!fs.existsSync(p) || fs.readFileSync(p, "utf8") !== text) differ.push(rel);
    existing.delete(rel);
  }
  for (const rel of existing) differ.push(`${rel} (stale, not produced)`);
  if (differ.length > 0) {
    console.error(`artifacts differ from a fresh compile (solc ${version}): ${differ.join(", ")}`);
    console.error("run: node scripts/compile_contracts.mjs");
    process.exit(1);
  }
  console.log(`artifacts match a fresh compile with solc ${version}`);
} else {
  fs.rmSync(path.join(outDir, "build-info"), { recursive: true, force: true });
  fs.mkdirSync(path.join(outDir, "build-info"), { recursive: true });
  for (const [rel, text] of Object.entries(files)) fs.writeFileSync(path.join(outDir, rel), text);
  console.log(`wrote ${Object.keys(files).length} artifacts with solc ${version} to ${path.relative(root, outDir)}`);
}
