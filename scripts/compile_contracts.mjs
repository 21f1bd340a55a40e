#!/usr/bin/env node
// Compile contracts/*.sol with the pinned solc-js (package.json) through its standard-JSON
// interface and write ABI + bytecode artifacts:
//   - the contracts the product deploys (PRODUCT) into src/gridledger/ledger/artifacts/;
//   - every other contract (the FeeClearing library, the test harness) and a Hardhat-style
//     build-info folder (build-info/, read by scripts/run_slither.py) into dev-artifacts/.
// Both folders are committed.
//   node scripts/compile_contracts.mjs           write the artifacts (and delete stale ones)
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
const productDir = path.join(root, "src", "gridledger", "ledger", "artifacts");
const devDir = path.join(root, "dev-artifacts");
const outDirs = [productDir, devDir];
// Deployed by the product (EntryChecker is a library linked into Market's bytecode, whose
// placeholder the deployment replaces with the library's address; MarketDesk is deployed by
// the Market's constructor, and its artifact lets readers check the desk's code).
const PRODUCT = new Set([
  "Market",
  "MarketDesk",
  "EntryChecker",
  "SettlementToken",
  "FeeClearingVerifier",
  "SettlementCalculator",
  "SecurityVerifier",
  "UniformClearing",
]);
const check = process.argv.includes("--check");

const settings = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 200 },
  viaIR: true,
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
const files = { [productDir]: {}, [devDir]: {} };
const stable = (obj) => JSON.stringify(obj, null, 2) + "\n";
for (const [source, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    if (!c.evm.bytecode.object) continue; // abstract contracts
    files[PRODUCT.has(name) ? productDir : devDir][`${name}.json`] = stable({
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
files[devDir][path.join("build-info", `${id}.json`)] = JSON.stringify({
  id, _format: "hh-sol-build-info-1", solcVersion: shortVersion, solcLongVersion: longVersion, input, output,
}) + "\n";

// The Market forwards every call it does not implement to its desk (contracts/MarketDesk.sol,
// deployed by the Market's constructor): its ABI, what callers encode against, is its own
// plus the desk's functions, errors and events it lacks.
{
  const market = JSON.parse(files[productDir]["Market.json"]);
  const desk = JSON.parse(files[productDir]["MarketDesk.json"]);
  const key = (e) => `${e.type}:${e.name || ""}:${JSON.stringify((e.inputs || []).map((i) => i.type))}`;
  const seen = new Set(market.abi.map(key));
  for (const e of desk.abi) {
    if (e.type === "constructor" || seen.has(key(e))) continue;
    market.abi.push(e);
    seen.add(key(e));
  }
  market.forwardsTo = "MarketDesk";
  files[productDir]["Market.json"] = stable(market);
}

// Relative paths of the .json files now in dir.
const existing = (dir) => {
  const out = new Set();
  const walk = (d, rel) => {
    if (!fs.existsSync(d)) return;
    for (const f of fs.readdirSync(d)) {
      const p = path.join(d, f);
      if (fs.statSync(p).isDirectory()) walk(p, path.join(rel, f));
      else if (f.endsWith(".json")) out.add(path.join(rel, f));
    }
  };
  walk(dir, "");
  return out;
};

if (check) {
  const differ = [];
  for (const dir of outDirs) {
    const stale = existing(dir);
    for (const [rel, text] of Object.entries(files[dir])) {
      const p = path.join(dir, rel);
      const shown = path.relative(root, p);
      if (!fs.existsSync(p) || fs.readFileSync(p, "utf8") !== text) differ.push(shown);
      stale.delete(rel);
    }
    for (const rel of stale) differ.push(`${path.relative(root, path.join(dir, rel))} (stale, not produced)`);
  }
  if (differ.length > 0) {
    console.error(`artifacts differ from a fresh compile (solc ${version}): ${differ.join(", ")}`);
    console.error("run: node scripts/compile_contracts.mjs");
    process.exit(1);
  }
  console.log(`artifacts match a fresh compile with solc ${version}`);
} else {
  let written = 0;
  for (const dir of outDirs) {
    for (const rel of existing(dir)) {
      if (!(rel in files[dir])) fs.rmSync(path.join(dir, rel));
    }
    for (const [rel, text] of Object.entries(files[dir])) {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), text);
      written += 1;
    }
    // drop folders left empty by stale files (the old build-info)
    for (const f of fs.readdirSync(dir)) {
      const p = path.join(dir, f);
      if (fs.statSync(p).isDirectory() && fs.readdirSync(p).length === 0) fs.rmdirSync(p);
    }
  }
  const shown = outDirs.map((d) => path.relative(root, d)).join(" and ");
  console.log(`wrote ${written} artifacts with solc ${version} to ${shown}`);
}
