#!/usr/bin/env node
// A producer in another language: publishes messages with the official Node.js client,
// @google-cloud/pubsub, as a Node team's service would, so tests can check what Python consumers
// make of them (tests/test_node_producer.py).
//
//   node tests/node/publish.js [--timeout SECONDS] [FILE]      (no FILE, or "-": standard input)
//
// FILE is a JSON array of messages, each {"topic": "post-liked", "data": {...}, "attributes":
// {...}}. Each is published, in order, to projects/$PUBSUB_PROJECT_ID/topics/<topic> with
// `data` as its JSON and `attributes` exactly as given: the CloudEvents envelope (ce-id, ce-type,
// ...) is the caller's to write, so a test can send what it wants on the wire.
//
// Talks only to the Pub/Sub emulator: PUBSUB_EMULATOR_HOST must be set (the client then connects
// to it without TLS or credentials), and PUBSUB_PROJECT_ID names the project.
//
// Prints one JSON line per message once Pub/Sub accepted it, {"topic", "id" (its ce-id),
// "messageId"}, and exits 0. Otherwise prints one line saying what failed on stderr and exits 1:
// bad input (before anything is published), a publish Pub/Sub refused, or a run that took longer
// than --timeout seconds (default 30) all told.
'use strict';

const fs = require('node:fs');

const DEFAULT_TIMEOUT = 30; // seconds, for the whole run: reading, connecting, publishing

class UsageError extends Error {}

function options(argv) {
  let timeout = DEFAULT_TIMEOUT;
  let file = '-';
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--timeout') {
      timeout = Number(argv[++i]);
      if (!(timeout > 0)) throw new UsageError(`--timeout takes a positive number of seconds, found ${argv[i]}`);
    } else if (argv[i].startsWith('--')) {
      throw new UsageError(`unknown option ${argv[i]}; usage: publish.js [--timeout SECONDS] [FILE]`);
    } else {
      file = argv[i];
    }
  }
  return { timeout, file };
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Everything is checked before the first publish, so bad input publishes nothing.
function messages(text) {
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`input is not JSON: ${error.message}`);
  }
  if (!Array.isArray(parsed)) {
    throw new UsageError('input must be a JSON array of {"topic", "data", "attributes"} objects');
  }
  parsed.forEach((message, index) => {
    const where = `message ${index + 1}`;
    if (!isObject(message)) throw new UsageError(`${where} must be an object, found ${JSON.stringify(message)}`);
    if (typeof message.topic !== 'string' || !message.topic) {
      throw new UsageError(`${where}: "topic" must be a topic name like "post-liked"`);
    }
    if (!isObject(message.data)) throw new UsageError(`${where}: "data" must be a JSON object`);
    const attributes = message.attributes ?? {};
    if (!isObject(attributes)) throw new UsageError(`${where}: "attributes" must be an object of strings`);
    for (const [key, value] of Object.entries(attributes)) {
      if (typeof value !== 'string') {
        throw new UsageError(`${where}: attribute ${JSON.stringify(key)} must be a string, found ${typeof value}`);
      }
    }
  });
  return parsed;
}

function environment() {
  const project = process.env.PUBSUB_PROJECT_ID;
  if (!process.env.PUBSUB_EMULATOR_HOST) {
    throw new UsageError('PUBSUB_EMULATOR_HOST is not set: this producer only talks to the emulator (eval "$(./emulator.sh env)")');
  }
  if (!project) throw new UsageError('PUBSUB_PROJECT_ID is not set: it names the project to publish to');
  // The emulator needs no credentials, yet google-gax still looks for them (to check the universe
  // domain), and that probes the GCE metadata server: a network call and a MetadataLookupWarning.
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  return project;
}

// Asynchronously, so that the timeout also bounds a standard input that never ends.
async function read(file) {
  try {
    if (file !== '-') return await fs.promises.readFile(file, 'utf8');
    const chunks = [];
    for await (const chunk of process.stdin) chunks.push(chunk);
    return Buffer.concat(chunks).toString('utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${error.message}`);
  }
}

async function main() {
  const { timeout, file } = options(process.argv.slice(2));
  let current = 'starting';
  let hint = '';
  const timer = setTimeout(() => fail(`not done within ${timeout} s (${current})${hint}`), timeout * 1000);

  const project = environment();
  current = `reading ${file === '-' ? 'standard input' : file}`;
  const batch = messages(await read(file));
  // Loaded after the input is checked: the client takes a moment to load.
  const { PubSub } = require('@google-cloud/pubsub');
  const pubsub = new PubSub(); // PUBSUB_EMULATOR_HOST and PUBSUB_PROJECT_ID come from the environment
  hint = `; is the emulator at ${process.env.PUBSUB_EMULATOR_HOST} running?`;
  const topics = new Map();
  try {
    for (const [index, message] of batch.entries()) {
      const attributes = message.attributes ?? {};
      current = `message ${index + 1} to topic "${message.topic}"`;
      if (!topics.has(message.topic)) {
        topics.set(message.topic, pubsub.topic(`projects/${project}/topics/${message.topic}`));
      }
      const topic = topics.get(message.topic);
      let messageId;
      try {
        messageId = await topic.publishMessage({ json: message.data, attributes });
      } catch (error) {
        throw new Error(`${current} was not published: ${error.message}`);
      }
      const line = { topic: message.topic, id: attributes['ce-id'] ?? null, messageId };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  } finally {
    current = 'closing the client';
    await pubsub.close();
    clearTimeout(timer);
  }
}

function fail(message) {
  process.stderr.write(`publish.js: error: ${message}\n`);
  process.exit(1); // also ends gRPC's retries, which would otherwise keep the process alive
}

main().then(
  () => process.exit(0),
  (error) => fail(error instanceof UsageError ? error.message : (error.message ?? String(error))),
);
