#!/usr/bin/env node
// Compares data/hl7v2.txt with an InterSystems IRIS / Ensemble HL7 schema
// export (the XML of a category such as 2.5.HL7, exported from the Management
// Portal or found in public repositories), so differences in structures, field
// names and component names can be found and fixed:
//
//   node tools/compare-iris.js EXPORT.xml VERSION [data/hl7v2.txt]
//
// Structures are compared as IRIS sees them: groups are brackets around more
// than one element, names are not part of the comparison. Field and component
// names are compared as IRIS property names (non-alphanumerics dropped, case
// ignored), accepting the notes the crate accepts (see naming.rs).
'use strict';

const fs = require('fs');
const path = require('path');
const [, , exportFile, version, dataArg] = process.argv;
if (!exportFile || !version) {
  console.error('usage: node tools/compare-iris.js EXPORT.xml VERSION [data/hl7v2.txt]');
  process.exit(2);
}
const dataFile = dataArg || path.join(__dirname, '..', 'data', 'hl7v2.txt');

const unescape = (s) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&apos;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&');
const irisName = (s) => s.replace(/[^A-Za-z0-9]/g, '').toLowerCase();
const attr = (tag, name) => {
  const m = tag.match(new RegExp(`\\b${name}=(['"])([\\s\\S]*?)\\1`));
  return m ? unescape(m[2]) : undefined;
};

// --- the IRIS export
const xml = fs.readFileSync(exportFile, 'utf8');
const iris = { structures: {}, segments: {}, datatypes: {} };
for (const m of xml.matchAll(/<MessageStructure\b[^>]*>/g)) {
  iris.structures[attr(m[0], 'name')] = attr(m[0], 'definition');
}
for (const [kind, outer, inner] of [['segments', 'SegmentStructure', 'SegmentSubStructure'], ['datatypes', 'DataType', 'DataSubType']]) {
  const re = new RegExp(`<${outer}\\b([^>]*)>([\\s\\S]*?)</${outer}>`, 'g');
  for (const m of xml.matchAll(re)) {
    const name = attr(`<x ${m[1]}>`, 'name');
    const items = [];
    for (const s of m[2].matchAll(new RegExp(`<${inner}\\b[^>]*>`, 'g'))) {
      items[Number(attr(s[0], 'piece')) - 1] = { desc: attr(s[0], 'description') || '', datatype: attr(s[0], 'datatype') || '' };
    }
    iris[kind][name] = items;
  }
}

function card(min, max) {
  return max === 1 ? (min === 1 ? '' : '?') : (min === 1 ? '+' : '*');
}

// IRIS definition -> canonical string; brackets around one element make no group.
function parseIris(def) {
  const toks = def.split('~').map((t) => t.replace(/^[^:]*:/, '')); // "2.5:PID" -> "PID"
  let i = 0;
  const seq = (end) => {
    const out = [];
    while (i < toks.length && toks[i] !== end) out.push(elem());
    i++;
    return out;
  };
  const elem = () => {
    const t = toks[i++];
    if (t === '[' || t === '{') {
      const inner = seq(t === '[' ? ']' : '}');
      const node = inner.length === 1 ? Object.assign({}, inner[0]) : { kind: 'g', children: inner, min: 1, max: 1 };
      if (t === '[') node.min = 0;
      else node.max = 0;
      return node;
    }
    if (t === '<') {
      const alts = [];
      while (i < toks.length && toks[i] !== '>') {
        if (toks[i] !== '|') alts.push(toks[i]);
        i++;
      }
      i++;
      return { kind: 'u', alts, min: 1, max: 1 };
    }
    return { kind: 's', name: t, min: 1, max: 1 };
  };
  return seq(undefined);
}

// data/hl7v2.txt message body -> the same node form, folding one-element groups
// the way build.rs does.
function parseOurs(body) {
  const stack = [[]];
  for (const t of body.split(' ')) {
    if (t === ')') {
      const children = stack.pop();
      const g = stack[stack.length - 1].pop();
      g.children = children;
      stack[stack.length - 1].push(g);
    } else if (t.endsWith('(')) {
      const c = /[?*+]$/.test(t.slice(0, -1)) ? t.slice(-2, -1) : '';
      stack[stack.length - 1].push({ kind: 'g', min: c === '?' || c === '*' ? 0 : 1, max: c === '*' || c === '+' ? 0 : 1 });
      stack.push([]);
    } else if (t.startsWith('<')) {
      stack[stack.length - 1].push({ kind: 'u', alts: t.slice(1, t.indexOf('>')).split('|'), min: 1, max: 1 });
    } else {
      const c = /^.+[?*+]$/.test(t) ? t.slice(-1) : '';
      const name = c ? t.slice(0, -1) : t;
      stack[stack.length - 1].push({ kind: 's', name, min: c === '?' || c === '*' ? 0 : 1, max: c === '*' || c === '+' ? 0 : 1 });
    }
  }
  const fold = (nodes) => nodes.map((n) => {
    if (n.kind !== 'g') return n;
    const children = fold(n.children);
    if (children.length !== 1 || children[0].kind === 'u') return Object.assign({}, n, { children });
    const only = Object.assign({}, children[0]);
    only.min = Math.min(only.min, n.min);
    if (n.max === 0) only.max = 0;
    return only;
  });
  return fold(stack[0]);
}

function render(nodes) {
  return nodes.map((n) => {
    if (n.kind === 'g') return `(${card(n.min, n.max)} ${render(n.children)} )`;
    if (n.kind === 'u') return `<${n.alts.join('|')}>`;
    return n.name + card(n.min, n.max);
  }).join(' ');
}

// --- data/hl7v2.txt, resolved for one version
const ours = { structures: {}, segments: {}, datatypes: {} };
{
  const last = { M: {}, S: {}, D: {} };
  let v = null;
  let open = null;
  for (const line of fs.readFileSync(dataFile, 'utf8').split('\n')) {
    if (line.startsWith('#') || !line) continue;
    if (line.startsWith(' ')) {
      const prev = last[open.kind][open.name + '#prev'] || [];
      if (line.startsWith(' =')) {
        const n = Number(line.slice(2));
        for (let k = 0; k < n; k++) open.items.push(prev[open.items.length]);
      } else if (line.startsWith(' c ')) {
        const [dt, alias, ...d] = line.slice(3).split(' ');
        open.items.push({ datatype: dt, alias: alias === '-' ? '' : alias, desc: d.join(' ') });
      } else if (line.startsWith(' f ')) {
        const [dt, , , alias, ...d] = line.slice(3).split(' ');
        open.items.push({ datatype: dt, alias: alias === '-' ? '' : alias, desc: d.join(' ') });
      }
      continue;
    }
    const [kind, name, ...rest] = line.split(' ');
    if (kind === 'V') v = name;
    if (kind === 'M') {
      const body = rest.join(' ');
      last.M[name] = body === '=' ? last.M[name] : body;
      if (v === version) ours.structures[name] = last.M[name];
    }
    if (kind === 'S' || kind === 'D') {
      const same = rest[0] === '=';
      const items = same ? last[kind][name] : [];
      last[kind][name + '#prev'] = last[kind][name];
      last[kind][name] = items;
      open = { kind, name, items };
      if (v === version) ours[kind === 'S' ? 'segments' : 'datatypes'][name] = items;
    }
  }
}

function nameMatches(irisDesc, item) {
  const want = irisName(irisDesc);
  const have = irisName(item.desc);
  if (want === have || (item.alias && want === item.alias.toLowerCase())) return true;
  if (!have || !want.startsWith(have)) return false;
  const rest = want.slice(have.length);
  return rest === item.datatype.toLowerCase() || (rest.length > 2 && rest.startsWith('eg'));
}

let problems = 0;
const report = (s) => {
  problems++;
  console.log(s);
};
let compared = 0;
for (const [name, def] of Object.entries(iris.structures)) {
  if (!ours.structures[name]) {
    report(`structure ${name}: not in ${version} here`);
    continue;
  }
  compared++;
  const a = render(parseIris(def));
  const b = render(parseOurs(ours.structures[name]));
  if (a !== b) report(`structure ${name}:\n  iris: ${a}\n  here: ${b}`);
}
for (const kind of ['segments', 'datatypes']) {
  for (const [name, items] of Object.entries(iris[kind])) {
    const mine = ours[kind][name];
    if (!mine) {
      report(`${kind.slice(0, -1)} ${name}: not in ${version} here`);
      continue;
    }
    compared++;
    items.forEach((it, i) => {
      if (!it) return;
      if (!mine[i]) report(`${name}-${i + 1} "${it.desc}": no such position here`);
      else if (!nameMatches(it.desc, mine[i])) report(`${name}-${i + 1}: iris "${it.desc}" (${irisName(it.desc)}), here "${mine[i].desc}" (${irisName(mine[i].desc)})`);
    });
  }
}
console.log(`${compared} definitions compared, ${problems} differences`);
process.exit(problems ? 1 : 0);
