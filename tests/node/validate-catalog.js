#!/usr/bin/env node
// Validates a Backstage catalog file the way Backstage's catalog backend reads one, offline.
//
//   node tests/node/validate-catalog.js [FILE]      (no FILE, or "-": standard input)
//
// 1. Parse: every YAML document with the `yaml` package, as the catalog backend does
//    (parseEntityYaml); an empty document is skipped, anything but a mapping is an error.
// 2. The backend's entity policies, in its order: SchemaValidEntityPolicy (the entity envelope
//    schema), DefaultNamespaceEntityPolicy, NoForeignRootFieldsEntityPolicy,
//    FieldFormatEntityPolicy (names, namespaces, labels, annotations, tags).
// 3. The kind validators of the built-in kinds (as BuiltinKindsEntityProcessor runs them): one
//    must recognise the entity (apiVersion and kind) and accept its spec.
// 4. References: each must parse as an entity ref; spec.system, providesApis, consumesApis,
//    dependsOn, subcomponentOf and spec.domain must name an entity in the same file (owners
//    are groups or users kept elsewhere). No two entities may share kind, namespace and name.
// 5. An API of spec.type asyncapi: its definition must parse, without errors, with the AsyncAPI
//    parser that Backstage's API docs page uses to render it (warnings are not problems).
//
// Prints the parsed entities as a JSON array on stdout and exits 0; otherwise prints one line
// per problem on stderr and exits 1.
'use strict';

const fs = require('node:fs');
const yaml = require('yaml');
const {
  DefaultNamespaceEntityPolicy,
  EntityPolicies,
  FieldFormatEntityPolicy,
  NoForeignRootFieldsEntityPolicy,
  SchemaValidEntityPolicy,
  apiEntityV1alpha1Validator,
  componentEntityV1alpha1Validator,
  domainEntityV1alpha1Validator,
  groupEntityV1alpha1Validator,
  locationEntityV1alpha1Validator,
  makeValidator,
  parseEntityRef,
  resourceEntityV1alpha1Validator,
  stringifyEntityRef,
  systemEntityV1alpha1Validator,
  userEntityV1alpha1Validator,
} = require('@backstage/catalog-model');

const policy = EntityPolicies.allOf([
  new SchemaValidEntityPolicy(),
  new DefaultNamespaceEntityPolicy(),
  new NoForeignRootFieldsEntityPolicy(),
  new FieldFormatEntityPolicy(makeValidator()),
]);

const kindValidators = [
  apiEntityV1alpha1Validator,
  componentEntityV1alpha1Validator,
  domainEntityV1alpha1Validator,
  groupEntityV1alpha1Validator,
  locationEntityV1alpha1Validator,
  resourceEntityV1alpha1Validator,
  systemEntityV1alpha1Validator,
  userEntityV1alpha1Validator,
];

// Spec fields that refer to another entity: [path, default kind, must be in this file].
const references = [
  ['owner', 'Group', false],
  ['system', 'System', true],
  ['domain', 'Domain', true],
  ['subcomponentOf', 'Component', true],
  ['providesApis', 'API', true],
  ['consumesApis', 'API', true],
  ['dependsOn', 'Component', true],
];

function parse(text) {
  const entities = [];
  const problems = [];
  yaml.parseAllDocuments(text).forEach((document, index) => {
    const where = `document ${index + 1}`;
    if (document.errors.length) {
      problems.push(`${where}: YAML error: ${document.errors[0].message}`);
      return;
    }
    const value = document.toJSON();
    if (value === null) return;
    if (typeof value !== 'object' || Array.isArray(value)) {
      problems.push(`${where}: expected an entity (a mapping), found ${JSON.stringify(value)}`);
      return;
    }
    entities.push({ where, entity: value });
  });
  return { entities, problems };
}

async function validate(where, entity) {
  // The policies may fill in defaults (the namespace): they get a copy.
  const enforced = await policy.enforce(structuredClone(entity));
  const label = `${where} (${stringifyEntityRef(enforced)})`;
  let recognised = false;
  for (const validator of kindValidators) {
    if (await validator.check(enforced)) {
      recognised = true;
      break;
    }
  }
  if (!recognised) {
    throw new Error(`${label}: no built-in kind recognises apiVersion ${enforced.apiVersion} kind ${enforced.kind}`);
  }
  return enforced;
}

function checkReferences(validated) {
  const problems = [];
  const known = new Set();
  for (const { where, entity } of validated) {
    const ref = stringifyEntityRef(entity);
    if (known.has(ref)) problems.push(`${where}: ${ref} is declared twice`);
    known.add(ref);
  }
  for (const { where, entity } of validated) {
    const namespace = entity.metadata.namespace;
    for (const [field, defaultKind, local] of references) {
      const raw = entity.spec?.[field];
      if (raw === undefined) continue;
      for (const target of Array.isArray(raw) ? raw : [raw]) {
        let ref;
        try {
          ref = stringifyEntityRef(parseEntityRef(target, { defaultKind, defaultNamespace: namespace }));
        } catch (error) {
          problems.push(`${where} (${stringifyEntityRef(entity)}): spec.${field}: ${error.message}`);
          continue;
        }
        if (local && !known.has(ref)) {
          problems.push(`${where} (${stringifyEntityRef(entity)}): spec.${field} refers to ${ref}, which is not in the file`);
        }
      }
    }
  }
  return problems;
}

async function checkDefinitions(validated) {
  const problems = [];
  const apis = validated.filter(({ entity }) => entity.kind === 'API' && entity.spec.type === 'asyncapi');
  if (!apis.length) return problems;
  // Loaded only when needed: the parser takes about a second and a half to load.
  const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');
  const parser = new Parser();
  for (const { where, entity } of apis) {
    const { document, diagnostics } = await parser.parse(entity.spec.definition);
    const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
    for (const d of errors) {
      problems.push(`${where} (${stringifyEntityRef(entity)}): spec.definition: ${d.message} at /${d.path.join('/')}`);
    }
    if (!document && !errors.length) {
      problems.push(`${where} (${stringifyEntityRef(entity)}): spec.definition is not an AsyncAPI document`);
    }
  }
  return problems;
}

async function main() {
  const file = process.argv[2] ?? '-';
  const text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  const { entities, problems } = parse(text);
  const validated = [];
  for (const { where, entity } of entities) {
    try {
      validated.push({ where, entity: await validate(where, entity) });
    } catch (error) {
      problems.push(error.message.startsWith(where) ? error.message : `${where}: ${error.message}`);
    }
  }
  if (!problems.length) problems.push(...checkReferences(validated), ...(await checkDefinitions(validated)));
  if (!entities.length && !problems.length) problems.push('no entity found');
  if (problems.length) {
    const order = (line) => Number(/^document (\d+)/.exec(line)?.[1] ?? 0);
    problems.sort((a, b) => order(a) - order(b));
    process.stderr.write(problems.map((line) => `${line}\n`).join(''));
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`${JSON.stringify(entities.map(({ entity }) => entity))}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exitCode = 2;
});
