#!/usr/bin/env node
// Converts the npm package hl7-dictionary 1.0.1 (MIT, Fernando Serrano) into the
// compact text file data/hl7v2.txt that build.rs turns into Rust statics.
//
//   cd /tmp && mkdir -p hl7dict && cd hl7dict \
//     && npm pack hl7-dictionary@1.0.1 && tar xzf hl7-dictionary-1.0.1.tgz
//   cd /tmp && mkdir -p hl7apy && cd hl7apy \
//     && pip download --no-deps --no-binary :all: hl7apy==1.3.5 && tar xzf hl7apy-1.3.5.tar.gz
//   node tools/convert.js /tmp/hl7dict/package /tmp/hl7apy/hl7apy-1.3.5 > data/hl7v2.txt
//
// hl7-dictionary lists messages under their trigger events and carries one
// table 0354 (from its newest version). Which message structures each version
// really has is taken from the PyPI package hl7apy 1.3.5 (MIT, CRS4): the
// names of its per-version MESSAGES and of its per-version table 0354. Only
// those names are used; every definition still comes from hl7-dictionary.
//
// Only what the crate serves is kept: component and field descriptions (they
// are where IRIS property names come from), data types, optionality and
// repetition, message trees with group names, and table 0354. Lengths, table
// numbers, segment/message/data type descriptions and the other tables are
// dropped. A definition identical to the one the previous version had is
// written as "=" (the reader copies it forward), which is what keeps the file
// small: most segments and data types do not change between versions.
'use strict';

const path = require('path');
const fs = require('fs');
const pkg = process.argv[2];
const apy = process.argv[3];
if (!pkg || !apy) {
  console.error('usage: node tools/convert.js PATH/TO/hl7-dictionary/package PATH/TO/hl7apy-1.3.5 > data/hl7v2.txt');
  process.exit(2);
}
{
  const info = fs.readFileSync(path.join(apy, 'PKG-INFO'), 'utf8');
  if (!/^Name: hl7apy$/m.test(info) || !/^Version: 1\.3\.5$/m.test(info)) {
    console.error(`expected hl7apy 1.3.5 in ${apy}`);
    process.exit(2);
  }
}
const meta = require(path.join(pkg, 'package.json'));
if (meta.name !== 'hl7-dictionary' || meta.version !== '1.0.1') {
  console.error(`expected hl7-dictionary 1.0.1, found ${meta.name} ${meta.version}`);
  process.exit(2);
}
const dict = require(path.join(pkg, 'lib', 'index.js'));
const VERSIONS = ['2.1', '2.2', '2.3', '2.3.1', '2.4', '2.5', '2.5.1', '2.6', '2.7', '2.7.1'];

// The message structures of a version according to hl7apy: the keys of its
// MESSAGES (from 2.3 on they are structures; in 2.1 and 2.2 they are trigger
// events, so those versions get no list) and the values of its table 0354.
// 2.7.1 uses 2.7's list (hl7apy has no 2.7.1).
const STRUCTURE_LISTS_FROM = { '2.3': 'v2_3', '2.3.1': 'v2_3_1', '2.4': 'v2_4', '2.5': 'v2_5', '2.5.1': 'v2_5_1', '2.6': 'v2_6', '2.7': 'v2_7', '2.7.1': 'v2_7' };
function structureList(v) {
  const dir = STRUCTURE_LISTS_FROM[v];
  if (!dir) return null;
  const names = new Set();
  const messages = fs.readFileSync(path.join(apy, 'hl7apy', dir, 'messages.py'), 'utf8');
  for (const m of messages.matchAll(/^ {4}'([A-Z0-9]{3}(?:_[A-Z0-9]{2,3})?)': \(/gm)) names.add(m[1]);
  const tablesFile = path.join(apy, 'hl7apy', dir, 'tables.py');
  if (fs.existsSync(tablesFile)) {
    const tables = fs.readFileSync(tablesFile, 'utf8');
    const at = tables.indexOf("'HL70354': (");
    if (at >= 0) {
      const block = tables.slice(at, tables.indexOf('))', at));
      for (const m of block.matchAll(/'([A-Z0-9]{3}(?:_[A-Z0-9]{2,3})?)'/g)) names.add(m[1]);
    }
  }
  check(names.size > 20 && names.has('ACK'), `hl7apy structure list for ${v}`);
  return names;
}

// hl7apy's names of fields (PID_3 -> PATIENT_IDENTIFIER_LIST) and components
// (XPN_5 -> PREFIX_E_G_DR), per version. They come from the HL7 database, as
// InterSystems' schemas do, and keep what hl7-dictionary's descriptions
// sometimes lost ("Prefix (e.g., DR)", "Patient ID (Internal ID)"); with the
// underscores dropped they are IRIS property names up to case. They are kept
// as a second accepted name where they differ. 2.7.1 uses 2.7's.
const APY_DIRS = { '2.1': 'v2_1', '2.2': 'v2_2', '2.3': 'v2_3', '2.3.1': 'v2_3_1', '2.4': 'v2_4', '2.5': 'v2_5', '2.5.1': 'v2_5_1', '2.6': 'v2_6', '2.7': 'v2_7', '2.7.1': 'v2_7' };
function apyNames(v) {
  const dir = path.join(apy, 'hl7apy', APY_DIRS[v]);
  const fields = {};
  const f = fs.readFileSync(path.join(dir, 'fields.py'), 'utf8');
  for (const m of f.matchAll(/'([A-Z0-9]{3})_(\d+)': \(\s*'(?:leaf|sequence)',\s*[^,]+,\s*'([^']*)',\s*'([^']*)'/g)) fields[`${m[1]}-${m[2]}`] = m[4];
  const comps = {};
  const d = fs.readFileSync(path.join(dir, 'datatypes.py'), 'utf8');
  for (const m of d.matchAll(/'([A-Z0-9_]+?)_(\d+)': \[\s*'(?:leaf|sequence)',\s*[^,]+,\s*'([^']*)',\s*'([^']*)'/g)) comps[`${m[1]}-${m[2]}`] = m[4];
  check(Object.keys(fields).length > 300 && Object.keys(comps).length > 20, `hl7apy names for ${v}`);
  return { fields, comps };
}

// The second name of a field or component: hl7apy's, when it is another name.
function alias(apyName, desc) {
  if (!apyName) return '-';
  const a = apyName.replace(/[^A-Za-z0-9]/g, '');
  const b = String(desc).replace(/[^A-Za-z0-9]/g, '');
  return a && a.toUpperCase() !== b.toUpperCase() ? a : '-';
}

function clean(s) {
  // Descriptions go on one line after a fixed number of fields; tabs and
  // newlines never occur in the source but are guarded against anyway.
  return String(s === undefined || s === null ? '' : s).replace(/[\t\r\n]+/g, ' ').trim();
}

function check(cond, what) {
  if (!cond) {
    console.error('unexpected source data: ' + what);
    process.exit(1);
  }
}

const out = [];
out.push('# HL7 v2 definitions converted from the npm package hl7-dictionary 1.0.1 (MIT,');
out.push('# Copyright (c) Fernando Serrano), with structure, field and component names from the');
out.push('# PyPI package hl7apy 1.3.5 (MIT, Copyright (c) CRS4), by tools/convert.js. Do not edit by hand.');
out.push('# Format (one record per line, fields separated by a single space, the');
out.push('# description always last so it may contain spaces):');
out.push('#   T STRUCTURE EVENT...          table 0354: message structure -> trigger events');
out.push('#   V VERSION                     starts a version');
out.push('#   D NAME [=]                    data type; a lone "=" copies the previous version\'s');
out.push('#    c DATATYPE ALIAS DESCRIPTION ... one line per component, in order; ALIAS is');
out.push('#                                 hl7apy\'s name when it is another name, else -');
out.push('#   S NAME [=]                    segment');
out.push('#    f DATATYPE OPT REP ALIAS DESC ... one line per field: OPT R/O/C/B, REP max');
out.push('#                                 repetitions (0 = unbounded, 1 = not repeating)');
out.push('#    =N                           ... the next N components/fields are the same as in');
out.push('#                                 the previous version, at the same positions');
out.push('#   M NAME [=] [ELEMENT...]       message structure, elements in order:');
out.push('#                                 SEG, GROUPNAME( ELEMENT... ), <SEG|SEG|...> (choice),');
out.push('#                                 * = any segment; suffix ? optional, * optional and');
out.push('#                                 repeating, + repeating, none = required once');
out.push('#   A NAME STRUCTURE              TYPE_EVENT NAME uses STRUCTURE in this version');

// Table 0354 (one global table in the package, from the newest version).
const t354 = dict.tables['354'].values;
for (const [structure, events] of Object.entries(t354)) {
  const evs = String(events).split(/[,.\s]+/).map((e) => e.trim()).filter((e) => e && e !== 'Varies');
  out.push(['T', structure].concat(evs).join(' '));
}

const OPT = { 1: 'O', 2: 'R', 3: 'C', 4: 'B' };

// Where the package lost part of a description and two fields of a segment
// ended up with the same name, the standard's own field names are restored.
// HL7 2.2 and 2.3 name PID-2 "Patient ID (External ID)" and PID-3 "Patient ID
// (Internal ID)"; the package has "Patient ID" for both, and InterSystems'
// documentation shows PatientIDInternalID for 2.3 PID-3. Each correction is
// checked against the text it replaces so a different source version fails
// loudly instead of being patched blindly.
const CORRECTIONS = [
  { versions: ['2.2', '2.3'], segment: 'PID', field: 2, from: 'Patient ID', to: 'Patient ID (External ID)' },
  { versions: ['2.2', '2.3'], segment: 'PID', field: 3, from: 'Patient ID', to: 'Patient ID (Internal ID)' },
];

function correctedDesc(v, segment, index, desc) {
  const c = CORRECTIONS.find((x) => x.versions.includes(v) && x.segment === segment && x.field === index + 1);
  if (!c) return desc;
  check(desc === c.from, `correction of ${v} ${segment}-${c.field}: expected "${c.from}", found "${desc}"`);
  return c.to;
}

function datatypeLines(name, dt, names) {
  return dt.subfields.map((c, i) => ` c ${clean(c.datatype) || '-'} ${alias(names.comps[`${name}-${i + 1}`], c.desc)} ${clean(c.desc)}`);
}

function segmentLines(v, name, seg, names) {
  return seg.fields.map((f, i) => {
    const opt = OPT[f.opt];
    check(opt, `field opt ${f.opt}`);
    check(Number.isInteger(f.rep) && f.rep >= 0, `field rep ${f.rep}`);
    const desc = correctedDesc(v, name, i, f.desc);
    return ` f ${clean(f.datatype) || '-'} ${opt} ${f.rep} ${alias(names.fields[`${name}-${i + 1}`], desc)} ${clean(desc)}`;
  });
}

function card(n) {
  // min/max in the package are 0/1 and 0 (unbounded)/1 only; the converter
  // refuses anything else rather than lose it.
  check((n.min === 0 || n.min === 1) && (n.max === 0 || n.max === 1), `min/max ${n.min}/${n.max} of ${n.name}`);
  if (n.max === 1) return n.min === 1 ? '' : '?';
  return n.min === 1 ? '+' : '*';
}

class Broken extends Error {}

function messageTokens(nodes, acc) {
  for (const n of nodes) {
    if (n.children) {
      check(/^[^\s()<>|?*+=]*$/.test(n.name), `group name ${n.name}`);
      acc.push(`${n.name}${card(n)}(`);
      messageTokens(n.children, acc);
      acc.push(')');
    } else if (n.name.includes(',')) {
      const alts = n.name.split(',').map((x) => x.trim());
      if (alts.some((a) => a === '')) throw new Broken(`choice with unnamed members "${n.name}"`);
      alts.forEach((a) => check(/^[A-Z0-9]{3}$/.test(a), `choice member ${a}`));
      acc.push(`<${alts.join('|')}>${card(n)}`);
    } else if (n.name === 'GenericSegment') {
      // 2.3 MFN_M01: the master file's own record segment, whatever it is.
      acc.push(`*${card(n)}`);
    } else {
      check(/^[A-Z0-9]{3}$/.test(n.name), `segment name ${n.name}`);
      acc.push(`${n.name}${card(n)}`);
    }
  }
  return acc;
}

// The table 0354 row (of the package's single, newest table) that gives the
// structure of TYPE_EVENT, among the structures the version defines.
function rowStructure(key, isStructure) {
  const [type, event] = key.split('_');
  for (const [structure, events] of Object.entries(t354)) {
    if (!structure.startsWith(type + '_')) continue;
    const evs = String(events).split(/[,.\s]+/);
    if (evs.includes(event) && isStructure(structure)) return structure;
  }
  return null;
}

// Decides, for one version, what each message of the package is: a structure
// (M), a TYPE_EVENT name that uses another structure (A, alias), or nothing to
// write because table 0354 already maps its event to a structure of that
// version. Returns { kind, target, why } per message name.
function classify(v, def) {
  const keys = Object.keys(def.messages);
  const list = structureList(v);
  const tree = (k) => JSON.stringify(def.messages[k].segments.segments);
  const isStructure = list ? (k) => list.has(k) && k in def.messages : (k) => k in def.messages;
  const out = {};
  for (const k of keys) {
    if (list && list.has(k)) {
      out[k] = { kind: 'M' };
      continue;
    }
    const row = rowStructure(k, isStructure);
    if (!list) {
      out[k] = row && row !== k ? { kind: 'covered' } : { kind: 'M' };
      continue;
    }
    // Not a structure of this version: the newest table's row when its
    // structure exists here, otherwise the structure of the same message type
    // with the very same definition (2.3.1 ADT_A05 is ADT_A01, as InterSystems
    // documents; 2.3.1 ADT_A21 is ADT_A02).
    if (row && row !== k) {
      out[k] = { kind: 'covered' };
      continue;
    }
    const type = k.split('_')[0];
    const same = keys.filter((o) => o !== k && isStructure(o) && o.startsWith(type + '_') && tree(o) === tree(k)).sort();
    if (same.length) {
      const why = same.length > 1 ? `same definition as ${same.join(', ')}; the first is used` : '';
      out[k] = { kind: 'A', target: same[0], why };
    } else {
      // Neither: kept under its own name, as before structure lists existed.
      out[k] = { kind: 'M' };
    }
  }
  return out;
}

const previous = { D: {}, S: {}, M: {} };
function emitLines(kind, name, lines) {
  const prev = previous[kind][name];
  previous[kind][name] = lines;
  if (prev && prev.length === lines.length && prev.every((l, i) => l === lines[i])) {
    out.push(`${kind} ${name} =`);
    return;
  }
  out.push(`${kind} ${name}`);
  let same = 0;
  lines.forEach((l, i) => {
    if (prev && i < prev.length && prev[i] === l) {
      same += 1;
      return;
    }
    if (same) out.push(` =${same}`);
    same = 0;
    out.push(l);
  });
  if (same) out.push(` =${same}`);
}

function emitMessage(name, tokens) {
  const line = tokens.join(' ');
  if (previous.M[name] === line) {
    out.push(`M ${name} =`);
  } else {
    out.push(`M ${name} ${line}`);
    previous.M[name] = line;
  }
}

for (const v of VERSIONS) {
  const def = dict.definitions[v];
  check(def, `version ${v}`);
  out.push(`V ${v}`);
  const names = apyNames(v);
  for (const name of Object.keys(def.fields).sort()) {
    check(/^[A-Z0-9_]+$/.test(name), `data type name ${name}`);
    emitLines('D', name, datatypeLines(name, def.fields[name], names));
  }
  for (const name of Object.keys(def.segments).sort()) {
    // 2.6 lists the data type ED among its segments; segment ids are 3 characters.
    if (name === 'ED' && v === '2.6') continue;
    check(/^[A-Z0-9]{3}$/.test(name), `segment name ${name}`);
    emitLines('S', name, segmentLines(v, name, def.segments[name], names));
  }
  const kinds = classify(v, def);
  for (const name of Object.keys(def.messages).sort()) {
    check(/^[A-Z0-9_]+$/.test(name), `message name ${name}`);
    const k = kinds[name];
    if (k.kind === 'covered') continue;
    if (k.kind === 'A') {
      if (k.why) out.push(`# ${v} ${name}: ${k.why}`);
      out.push(`A ${name} ${k.target}`);
      continue;
    }
    if (k.why) out.push(`# ${v} ${name}: ${k.why}`);
    let tokens;
    try {
      tokens = messageTokens(def.messages[name].segments.segments, []);
    } catch (e) {
      if (!(e instanceof Broken)) throw e;
      // Keep the reason in the file so a reader sees what is missing and why.
      out.push(`# ${v} ${name} left out: ${e.message} in the source`);
      continue;
    }
    emitMessage(name, tokens);
  }
}
process.stdout.write(out.join('\n') + '\n');
